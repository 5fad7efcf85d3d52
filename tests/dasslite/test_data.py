import logging

import pytest
import torch.distributed as dist
from PIL import Image
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

import dasslite.data.data_manager as dm_module
from dasslite.config import get_cfg_default
from dasslite.data.data_manager import DataManager, DatasetWrapper, build_data_loader
from dasslite.data.datum import Datum
from dasslite.data.samplers import RandomClassSampler, build_sampler
from dasslite.data.transforms import build_transform

from .toy import toy_cfg

COOP_TRANSFORMS = ["random_resized_crop", "random_flip", "normalize"]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def coop_input_cfg():
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = COOP_TRANSFORMS
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    return cfg


def test_coop_pipelines_and_log_lines(caplog):
    caplog.set_level(logging.INFO)
    cfg = coop_input_cfg()
    train, test = build_transform(cfg, is_train=True), build_transform(cfg, is_train=False)
    norm = f"+ normalization (mean={CLIP_MEAN}, std={CLIP_STD})"
    assert caplog.messages == [
        "Building transform_train",
        "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))",
        "+ random flip",
        "+ to torch tensor of range [0, 1]",
        norm,
        "Building transform_test",
        "+ resize the smaller edge to 224",
        "+ 224x224 center crop",
        "+ to torch tensor of range [0, 1]",
        norm,
    ]
    names = [type(t).__name__ for t in train.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert train.transforms[0].interpolation.value == "bicubic"
    assert [type(t).__name__ for t in test.transforms] == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    img = Image.new("RGB", (448, 300), (255, 0, 0))
    assert test(img).shape == (3, 224, 224) and train(img).shape == (3, 224, 224)
    assert test.transforms[0].size == 224  # smaller edge, aspect kept (not a squash to 224x224)


def test_a_squash_test_pipeline_resizes_the_whole_image_without_a_crop(caplog):
    caplog.set_level(logging.INFO)
    cfg = coop_input_cfg()
    cfg.INPUT.TEST_RESIZE = "squash"
    test = build_transform(cfg, is_train=False)
    assert "+ resize to 224x224 (the whole image, no crop)" in caplog.messages
    assert [type(t).__name__ for t in test.transforms] == ["Resize", "ToTensor", "Normalize"]
    img = Image.new("RGB", (448, 300), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 60, 300))  # a left band a centre crop would cut off
    out = test(img)
    assert out.shape == (3, 224, 224) and out[2, :, :10].mean() > out[2, :, -10:].mean()


def test_every_named_transform_builds_and_runs():
    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (32, 32)
    cfg.INPUT.TRANSFORMS = [
        "random_flip",
        "random_translation",
        "random_crop",
        "center_crop",
        "colorjitter",
        "randomgrayscale",
        "gaussian_blur",
        "gaussian_noise",
        "cutout",
        "instance_norm",
        "randaugment",
        "imagenet_policy",
        "normalize",
    ]
    out = build_transform(cfg, is_train=True)(Image.new("RGB", (40, 50), (10, 200, 30)))
    assert out.shape == (3, 32, 32)


def test_resize_only_without_crop(caplog):
    caplog.set_level(logging.INFO)
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = ["random_flip"]
    tfm = build_transform(cfg, is_train=True)
    assert "+ resize to 224x224" in caplog.messages and type(tfm.transforms[0]).__name__ == "Resize"


def test_unknown_transform_and_interpolation():
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = ["random_flipp"]
    with pytest.raises(ValueError) as err:
        build_transform(cfg)
    msg = str(err.value)
    assert '"random_flipp"' in msg and 'Did you mean "random_flip"' in msg and "INPUT.TRANSFORMS" in msg
    assert "random_resized_crop" in msg
    cfg = get_cfg_default()
    cfg.INPUT.INTERPOLATION = "bicubik"
    with pytest.raises(ValueError, match=r'"bicubik".*"bicubic".*INPUT.INTERPOLATION'):
        build_transform(cfg, is_train=False)
    cfg = get_cfg_default()
    cfg.INPUT.TEST_RESIZE = "longest"  # open_clip has it; this pipeline does not
    with pytest.raises(ValueError, match=r'"longest".*INPUT.TEST_RESIZE'):
        build_transform(cfg, is_train=False)


def test_data_manager_loaders(toy_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    dm = DataManager(toy_cfg(toy_root, tmp_path))
    assert dm.num_classes == 4 and dm.classnames == ["red", "green", "blue", "gray"]
    assert dm.lab2cname == {0: "red", 1: "green", 2: "blue", 3: "gray"} and dm.num_source_domains == 0
    assert dm.train_loader_u is None and len(dm.train_loader_x) == 4 and dm.train_loader_x.drop_last
    assert isinstance(dm.train_loader_x.sampler, RandomSampler)
    assert isinstance(dm.test_loader.sampler, SequentialSampler) and not dm.test_loader.drop_last
    assert len(dm.val_loader.dataset) == 8 and len(dm.test_loader) == 4  # 16 test images, batch 5
    batch = next(iter(dm.train_loader_x))
    assert set(batch) == {"img", "label", "domain", "impath", "index"} and batch["img"].shape == (8, 3, 8, 8)
    summary = next(m for m in caplog.messages if "# train_x" in m)
    for row in ("Dataset    ToyColors", "# classes  4", "# train_x  32", "# val      8", "# test     16"):
        assert row in summary


def test_drop_last_only_with_a_full_batch(toy_root, tmp_path):
    cfg = toy_cfg(toy_root, tmp_path)
    data = DataManager(cfg).dataset.train_x[:5]
    loader = build_data_loader(cfg, "RandomSampler", data, batch_size=8, is_train=True)
    assert not loader.drop_last and len(loader) == 1  # 5 < 8: keep the partial batch, never empty
    with pytest.raises(ValueError, match='train_x split of DATASET.NAME "ToyColors" is empty'):
        build_data_loader(cfg, "RandomSampler", [], batch_size=8, split="train_x")


def test_val_loader_none_without_val(toy_root, tmp_path, monkeypatch):
    import tests.dasslite.toy as toy

    real = toy.read_split
    monkeypatch.setattr(toy, "read_split", lambda root, split: [] if split == "val" else real(root, split))
    assert DataManager(toy_cfg(toy_root, tmp_path)).val_loader is None


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    ds = DatasetWrapper(get_cfg_default(), [Datum(str(bad), 0, 0, "x")])
    with pytest.raises(OSError, match="broken.jpg"):
        ds[0]
    ds = DatasetWrapper(get_cfg_default(), [Datum(str(tmp_path / "gone.png"), 0, 0, "x")])
    with pytest.raises(FileNotFoundError, match="gone.png"):
        ds[0]


def test_samplers(toy_root, tmp_path):
    data = DataManager(toy_cfg(toy_root, tmp_path)).dataset.train_x
    sampler = build_sampler("RandomClassSampler", data_source=data, batch_size=8, n_ins=4)
    assert isinstance(sampler, RandomClassSampler)
    idx = list(sampler)
    # as in Dassl, a class left alone at the end cannot fill a batch and is dropped (so 24 or 32)
    assert len(idx) in (24, 32) and len(set(idx)) == len(idx)
    labels = [data[i].label for i in idx]
    assert all(len(set(labels[i : i + 4])) == 1 for i in range(0, len(idx), 4))  # 4 of one class in a row
    assert all(len(set(labels[i : i + 8])) == 2 for i in range(0, len(idx), 8))  # 2 classes per batch
    with pytest.raises(ValueError, match=r'"RandomSampeler".*Did you mean "RandomSampler".*SequentialSampler'):
        build_sampler("RandomSampeler", data_source=data)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_distributed_train_loader(toy_root, tmp_path, process_group, monkeypatch):
    cfg = toy_cfg(toy_root, tmp_path)
    dm = DataManager(cfg)
    sampler = dm.train_loader_x.sampler
    assert isinstance(sampler, DistributedSampler) and sampler.shuffle and sampler.seed == cfg.SEED
    assert isinstance(dm.test_loader.sampler, SequentialSampler)  # evaluation stays whole on every rank
    monkeypatch.setattr(dm_module, "get_world_size", lambda: 2)
    loader = build_data_loader(cfg, "RandomSampler", dm.dataset.train_x, batch_size=8, is_train=True)
    assert loader.batch_size == 4 and loader.drop_last
    with pytest.raises(ValueError, match=r"batch size \(7\) must be divisible by the number of processes \(2\)"):
        build_data_loader(cfg, "RandomSampler", dm.dataset.train_x, batch_size=7, is_train=True)


def coprompt_cfg():
    """CoPrompt's data settings (configs/trainers/coprompt.yaml): two RandAugment views per image."""
    cfg = get_cfg_default()
    cfg.INPUT.SIZE, cfg.INPUT.TRANSFORMS, cfg.DATALOADER.K_TRANSFORMS = (32, 32), ["randaugment", "normalize"], 2
    cfg.DATALOADER.NUM_WORKERS = 0
    return cfg


def test_k_transforms_gives_k_views_in_training_and_one_in_testing(tmp_path):
    """Dassl's DatasetWrapper: "img" is a list of K independently augmented views when training (K > 1), a
    single tensor otherwise; a list of transforms gives "img", "img2", ..., each K times."""
    import random

    import numpy as np
    import torch

    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    cfg = coprompt_cfg()
    data = [Datum(str(path), 3, 0, "x")]
    random.seed(0)
    train = DatasetWrapper(cfg, data, build_transform(cfg, is_train=True), is_train=True)[0]
    assert isinstance(train["img"], list) and len(train["img"]) == 2 and train["label"] == 3
    assert all(v.shape == (3, 32, 32) for v in train["img"]) and not torch.equal(*train["img"])
    test = DatasetWrapper(cfg, data, build_transform(cfg, is_train=False), is_train=False)[0]
    assert torch.is_tensor(test["img"])
    two = DatasetWrapper(cfg, data, [build_transform(cfg, is_train=True)] * 2, is_train=True)[0]
    assert len(two["img"]) == len(two["img2"]) == 2
    batch = build_data_loader(cfg, data_source=data * 4, batch_size=4, tfm=build_transform(cfg), is_train=True)
    images = next(iter(batch))["img"]
    assert len(images) == 2 and images[0].shape == (4, 3, 32, 32)  # default collate: a list of K batches


def test_randaugment_is_dassls():
    """Dassl's RandAugment, not torchvision's: its 16 operations with their ranges, in its order, each
    applied at (m / 30) * (max - min) + min after `random.choices` picked n of them."""
    import random

    from dasslite.data.randaugment import OPERATIONS, DasslRandAugment

    ranges = [(0, 1)] * 3 + [(0, 30), (4, 8), (0, 256), (0, 110)] + [(0.1, 1.9)] * 4 + [(0.0, 0.3)] * 2
    assert [(low, high) for _, low, high in OPERATIONS] == ranges + [(0, 40), (0.0, 100), (0.0, 100)]
    tfm = build_transform(coprompt_cfg(), is_train=True)
    assert [type(t).__name__ for t in tfm.transforms][:2] == ["Resize", "DasslRandAugment"]

    img = Image.new("RGB", (32, 32), (10, 200, 30))
    invert = Image.new("RGB", (32, 32), (245, 55, 225))
    seen = set()
    for seed in range(200):  # every operation is drawn
        random.seed(seed)
        seen.update(random.choices(range(len(OPERATIONS)), k=2))
    assert seen == set(range(16))
    only_invert = DasslRandAugment(1, 10)
    for seed in range(50):
        random.seed(seed)
        if random.choices(range(16), k=1) == [2]:
            random.seed(seed)
            assert only_invert(img).tobytes() == invert.tobytes()
            break
    else:
        pytest.fail("no seed drew Invert")
    with pytest.raises(ValueError, match="RANDAUGMENT_M"):
        DasslRandAugment(2, 31)


def dassl_getitem(cfg, item, idx, transform, is_train):
    """Dassl's DatasetWrapper.__getitem__ (dassl/data/data_manager.py), replayed: the output keys in its
    order, each transform of a list applied K times in turn (K = K_TRANSFORMS when training, else 1), a
    list of the K views when K > 1, then the un-augmented "img0"."""
    import torchvision.transforms as T

    from dasslite.data.images import read_image
    from dasslite.data.transforms import INTERPOLATION_MODES

    k = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
    output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
    img0 = read_image(item.impath)
    tfms = transform if isinstance(transform, (list, tuple)) else [transform]
    for i, tfm in enumerate(tfms):
        views = [tfm(img0) for _ in range(k)]
        output["img" if i == 0 else f"img{i + 1}"] = views[0] if len(views) == 1 else views
    if cfg.DATALOADER.RETURN_IMG0:
        to_tensor = [T.Resize(cfg.INPUT.SIZE, interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]), T.ToTensor()]
        to_tensor += [T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)]
        output["img0"] = T.Compose(to_tensor)(img0)
    return output


def _same(a, b):
    import torch

    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return torch.equal(a, b) if torch.is_tensor(a) else a == b


@pytest.mark.parametrize(
    "k, listed, img0, is_train", [(2, False, False, True), (3, True, True, True), (2, False, True, False)]
)
def test_k_transforms_output_is_a_replay_of_dassls_wrapper(tmp_path, k, listed, img0, is_train):
    """The same keys in the same order and the same tensors as Dassl's wrapper from the same generator
    states: its RandAugment draws (random, numpy) are consumed view by view in Dassl's order."""
    import random

    import numpy as np
    import torch

    data = []
    for i in range(2):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        data.append(Datum(str(path), i, 0, f"c{i}"))
    cfg = coprompt_cfg()
    cfg.INPUT.TRANSFORMS = ["randaugment", "random_flip", "normalize"]
    cfg.DATALOADER.K_TRANSFORMS, cfg.DATALOADER.RETURN_IMG0 = k, img0
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    tfm = build_transform(cfg, is_train=True)
    transform = [tfm, build_transform(cfg, is_train=True)] if listed else tfm
    ours = DatasetWrapper(cfg, data, transform, is_train=is_train)
    for seed in range(4):
        for idx, item in enumerate(data):
            random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
            got = ours[idx]
            random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
            expected = dassl_getitem(cfg, item, idx, transform, is_train)
            assert list(got) == list(expected)
            assert all(_same(got[key], expected[key]) for key in expected), (seed, idx)
            after = (random.random(), np.random.random(), torch.rand(1))
            random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
            ours[idx]
            assert after == (random.random(), np.random.random(), torch.rand(1))  # the generators end where Dassl's do
    views = got["img"]
    assert isinstance(views, list) == (is_train and k > 1)
