"""Tip-Adapter(-F): logits from the authors' formula, the cache from averaged augmented views, their grid
search, only the keys learn in Tip-Adapter-F, and their cache files (best_F_<K>shots.pt) load."""

import pytest
import torch
import torch.nn.functional as F
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from coop_toolkit.trainers.tip_adapter import TipAdapter, TipAdapterF, search_grid, search_hp
from tests.trainers.helpers import CLASSNAMES, N_CLS, bare_trainer, batch_of, clip_fp32, make_cfg

SHOTS = 2


def tip_cfg(path, **opts):
    return make_cfg(path, **{"TRAINER.TIP_ADAPTER.PREC": "fp32", "DATASET.NUM_SHOTS": SHOTS, **opts})


def random_cache(width, seed=0):
    g = torch.Generator().manual_seed(seed)
    keys = F.normalize(torch.randn(N_CLS * SHOTS, width, generator=g), dim=-1)
    values = F.one_hot(torch.arange(N_CLS).repeat_interleave(SHOTS), N_CLS).float()
    return keys, values


@pytest.fixture(scope="module")
def trainer(tiny_clip_path):
    trainer = bare_trainer(TipAdapter, tip_cfg(tiny_clip_path, **{"DATASET.NAME": "DescribableTextures"}))
    trainer.model.cache.set_cache(*random_cache(trainer.model.text_features.shape[1]))
    trainer.model.cache.alpha.fill_(1.7)
    trainer.model.cache.beta.fill_(5.5)
    return trainer


def test_logits_equal_the_authors_formula(trainer, tiny_clip_path):
    clip = clip_fp32(tiny_clip_path)
    image = batch_of()["img"]
    keys, values = random_cache(trainer.model.text_features.shape[1])
    with torch.no_grad():
        f = F.normalize(clip.visual(image), dim=-1)
        text = F.normalize(clip.encode_text(tokenize([f"{c.replace('_', ' ')} texture." for c in CLASSNAMES])), dim=-1)
        affinity = f @ keys.t()
        expected = 100 * f @ text.t() + 1.7 * torch.exp(-5.5 * (1 - affinity)) @ values
    torch.testing.assert_close(trainer.model_inference(image), expected, rtol=0, atol=1e-4)
    assert not trainer.features_give_logits  # the registry-wide protocol test checks the zero-shot part only
    zero_shot = trainer.logit_scale() * trainer.image_features(image) @ trainer.class_features().t()
    torch.testing.assert_close(zero_shot, 100 * f @ text.t(), rtol=0, atol=1e-4)


class AugmentedPasses:
    """A loader whose every pass gives other (augmented) images of the same samples, in the same order."""

    def __init__(self, n, size=224):
        self.passes, self.n, self.size = [], n, size

    def __iter__(self):
        g = torch.Generator().manual_seed(len(self.passes))
        images = torch.randn(self.n, 3, self.size, self.size, generator=g)
        self.passes.append(images)
        labels = torch.arange(self.n) % N_CLS
        yield {"img": images[:3], "label": labels[:3]}
        yield {"img": images[3:], "label": labels[3:]}


def test_the_cache_averages_the_augmented_views_then_normalises(trainer, tiny_clip_path, monkeypatch):
    loader = AugmentedPasses(N_CLS * SHOTS)
    monkeypatch.setattr(trainer, "ordered_train_loader", lambda shuffle=False: loader)
    trainer.cfg.defrost()
    trainer.cfg.TRAINER.TIP_ADAPTER.AUGMENT_EPOCH = 3
    try:
        trainer.build_cache()
    finally:
        trainer.cfg.TRAINER.TIP_ADAPTER.AUGMENT_EPOCH = 10
        trainer.cfg.freeze()
    clip = clip_fp32(tiny_clip_path)
    with torch.no_grad():
        mean = torch.stack([clip.visual(images) for images in loader.passes]).mean(0)
    assert len(loader.passes) == 3
    torch.testing.assert_close(trainer.model.cache.adapter.weight, F.normalize(mean, dim=-1), rtol=0, atol=1e-5)
    labels = torch.arange(N_CLS * SHOTS) % N_CLS
    assert torch.equal(trainer.model.cache.values, F.one_hot(labels, N_CLS).float())
    assert trainer.model.cache.alpha.item() == 1.0 and trainer.model.cache.beta.item() == 1.0  # INIT_*


def test_the_search_walks_the_authors_grid_and_keeps_the_first_best(trainer):
    assert search_grid(7, 200)[-1] == pytest.approx(6.9655) and search_grid(3, 20)[0] == pytest.approx(0.1)
    opts = trainer.opts.clone()
    opts.defrost()
    opts.SEARCH_SCALE, opts.SEARCH_STEP = [7.0, 3.0], [6, 4]
    g = torch.Generator().manual_seed(1)
    features = F.normalize(torch.randn(40, 32, generator=g), dim=-1)
    labels = torch.randint(0, N_CLS, (40,), generator=g)
    keys, values = random_cache(32, seed=2)
    text = F.normalize(torch.randn(N_CLS, 32, generator=g), dim=-1)
    found = search_hp(features, labels, text, keys, values, opts)
    best = None
    for beta in [0.1 + i * 6.9 / 6 for i in range(6)]:
        for alpha in [0.1 + j * 2.9 / 4 for j in range(4)]:
            logits = 100 * features @ text.t() + alpha * torch.exp(-beta * (1 - features @ keys.t())) @ values
            acc = 100 * (logits.argmax(1) == labels).float().mean().item()
            if best is None or acc > best[2]:
                best = (beta, alpha, acc)
    assert found == pytest.approx(best)


def test_tip_adapter_f_trains_only_the_keys(tiny_clip_path):
    trainer = bare_trainer(TipAdapterF, tip_cfg(tiny_clip_path))
    trainer.model.cache.set_cache(*random_cache(trainer.model.text_features.shape[1]))
    trainer.optim, _, _ = trainer.build_optimizer()
    trainer._optims[trainer.model_name] = trainer.optim
    before = trainer.model.cache.adapter.weight.detach().clone()
    trainer.set_model_mode("train")
    trainer.forward_backward(batch_of())
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad == {"cache.adapter.weight"}
    assert not torch.equal(trainer.model.cache.adapter.weight, before)
    assert trainer.optim.defaults["eps"] == 1e-4 and trainer.optim.defaults["lr"] == 0.001


def test_the_authors_cache_files_load(tiny_clip_path, tmp_path):
    """Their ./caches/<dataset>/ folder: keys_<K>shots.pt [D, N*K], values_<K>shots.pt [N*K, C] and
    best_F_<K>shots.pt, Tip-Adapter-F's adapter weight saved bare (torch.save(adapter.weight))."""
    trainer = bare_trainer(TipAdapterF, tip_cfg(tiny_clip_path))
    trainer.val_loader = None
    keys, values = random_cache(trainer.model.text_features.shape[1], seed=4)
    torch.save(keys.t().half(), tmp_path / f"keys_{SHOTS}shots.pt")
    torch.save(values.half(), tmp_path / f"values_{SHOTS}shots.pt")
    trained = torch.nn.Parameter(keys.half() + 0.01)
    torch.save(trained, tmp_path / f"best_F_{SHOTS}shots.pt")
    trainer.load_model(str(tmp_path))
    cache = trainer.model.cache
    assert torch.equal(cache.adapter.weight, trained.detach().float()) and torch.equal(cache.values, values)
    assert cache.alpha.item() == pytest.approx(1.0) and cache.adapter.weight.dtype == torch.float32


def test_a_run_folder_checkpoint_resizes_the_empty_cache(trainer, tiny_clip_path, tmp_path):
    trainer.save_model(0, str(tmp_path))
    fresh = bare_trainer(TipAdapter, tip_cfg(tiny_clip_path, **{"DATASET.NAME": "DescribableTextures"}))
    assert torch.equal(fresh.model.cache.values, torch.eye(N_CLS))  # built from class names alone
    fresh.load_model(str(tmp_path), epoch=1)
    image = batch_of()["img"]
    assert torch.equal(fresh.model_inference(image), trainer.model_inference(image))


def test_results_paper_has_the_authors_few_shot_rows():
    """exp.log's rows reach results.py --paper; the averages are those of the 11 rows (16 / 1 shots)."""
    from reporting import paper_numbers as paper

    expected = {"Tip-Adapter": (70.32, 62.33), "Tip-Adapter-F": (75.83, 64.60), "CLIP-Adapter": (74.44, 62.67)}
    for method, (sixteen, one) in expected.items():
        average = paper.FEWSHOT[method, "RN50"]["Average"]
        assert (average[16], average[1]) == pytest.approx((sixteen, one), abs=0.01), method
        assert "exp.log" in paper.FEWSHOT_SOURCE[method]
    assert paper.METHOD["Tip_Adapter_F"] == "Tip-Adapter-F" and paper.METHOD["CLIP_Adapter"] == "CLIP-Adapter"


def test_a_cache_of_other_classes_is_refused_naming_why(trainer, tiny_clip_path, tmp_path):
    """The cache is class-specific: a run over other classes (base-to-new's new half) cannot use it."""
    from dasslite.errors import CheckpointError

    trainer.save_model(0, str(tmp_path))
    other = bare_trainer(TipAdapter, tip_cfg(tiny_clip_path), classnames=CLASSNAMES[:3])
    with pytest.raises(CheckpointError, match="class-specific"):
        other.load_model(str(tmp_path), epoch=1)


# 3 epochs of the keys, batch 4; one augmented pass for the cache and a small search grid, to be quick
TIP_F_RUN = (
    *("TRAINER.TIP_ADAPTER.TRAIN_EPOCH", "3", "TRAINER.TIP_ADAPTER.BATCH_SIZE", "4", "TRAIN.CHECKPOINT_FREQ", "0"),
    *("TRAINER.TIP_ADAPTER.AUGMENT_EPOCH", "1", "TRAINER.TIP_ADAPTER.SEARCH_STEP", "[4, 2]"),
    *("TRAINER.TIP_ADAPTER.LR", "0.05"),  # large steps: the val accuracy moves between epochs
)


def test_tip_adapter_f_resumed_chooses_the_epoch_the_uninterrupted_run_chooses(tmp_path, monkeypatch):
    """The best epoch so far (its val accuracy and keys) is in each checkpoint: a run stopped after an epoch
    and resumed keeps the keys an uninterrupted run keeps, not the best of the epochs after the stop."""
    import signal

    import train
    from dasslite.engine.checkpoint import load_checkpoint
    from tests.datasets.layouts import build_oxford_pets
    from tests.helpers import signal_at
    from tests.precision_matrix import CPU_LAYERS, run_args, save_small_clip

    root = str(tmp_path / "data")
    build_oxford_pets(root)
    clip = save_small_clip(tmp_path / "clip.pt", CPU_LAYERS)
    whole, cut = tmp_path / "whole", tmp_path / "cut"

    def argv(out, *extra):
        return run_args("Tip_Adapter_F", root, clip, out, "fp32", False, extra) + list(TIP_F_RUN)

    train.main(argv(whole))
    log = (whole / "log.txt").read_text()
    assert "Keys of epoch 1 " in log, "the test needs epoch 1 to be the best: the resumed run must remember it"
    signal_at(signal.SIGTERM, epoch=2, batch=1, setattr=monkeypatch.setattr)
    with pytest.raises(SystemExit):
        train.main(argv(cut))
    monkeypatch.undo()
    train.main(argv(cut, "--resume", str(cut)))
    assert "Previous epoch: 1" in (cut / "log.txt").read_text() and "Keys of epoch 1 " in (cut / "log.txt").read_text()
    a, b = (load_checkpoint(str(out / "tip_adapter" / "model.pth.tar-3"))["state_dict"] for out in (whole, cut))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
