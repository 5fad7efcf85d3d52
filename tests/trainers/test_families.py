"""Every open_clip family through the text-tower seam: parity with open_clip itself, a training step, refusals.

Each family is a tiny random instance built by open_clip from its own config (tools/tiny_families.py)
and loaded through `MODEL.BACKBONE.NAME local-dir:...`, with its own tokenizer (a locally trained
Hugging Face tokenizer for SigLIP / SigLIP 2).
"""

import logging
import os
import re

import pytest
import torch
import torch.nn.functional as F

from coop_toolkit.trainers.clip_backbone import load_clip
from coop_toolkit.trainers.coop import CoOp
from coop_toolkit.trainers.maple import MaPLe
from coop_toolkit.trainers.text_tower import UnsupportedBackboneError, text_tower
from coop_toolkit.trainers.zsclip import ZeroshotCLIP
from dasslite.config import merge_from_file_checked
from dasslite.errors import ConfigError
from tests.helpers import set_keys
from tests.trainers.helpers import CLASSNAMES, bare_trainer, make_cfg
from tools.tiny_families import FAMILIES, IMAGE_SIZE

pytest.importorskip("timm")
pytest.importorskip("transformers")  # SigLIP's tokenizers are Hugging Face tokenizers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = [name.replace("_", " ") for name in CLASSNAMES]
# What each family's config says its text tower does (the seam must read the same).
EXPECTED = {
    "openai": dict(context_length=77, pool_type="argmax", causal=True, lead=1),
    "siglip": dict(context_length=64, pool_type="last", causal=False, lead=0),
    "siglip2": dict(context_length=64, pool_type="last", causal=False, lead=0),
    "eva02": dict(context_length=77, pool_type="argmax", causal=True, lead=1),
    "mobileclip": dict(context_length=77, pool_type="argmax", causal=False, lead=1),
    "pe": dict(context_length=32, pool_type="argmax", causal=True, lead=1),
}


@pytest.fixture(scope="session")
def family_names(tmp_path_factory):
    from tools.tiny_families import save_tiny_family

    root = tmp_path_factory.mktemp("families")
    return {family: save_tiny_family(str(root / family), family) for family in FAMILIES}


_FROZEN = {}


def frozen_model(name):
    """The family's model, loaded once for the tests that only read it (a test that changes it loads its own)."""
    if name not in _FROZEN:
        _FROZEN[name] = load_clip(name)
    return _FROZEN[name]


def cfg_for(name, trainer="COOP", yaml=None, **opts):
    """Defaults for `trainer`'s node (then `yaml`), fp32, the tiny size; prompt depths fit the tiny towers."""
    cfg = make_cfg(name)
    if yaml:
        merge_from_file_checked(cfg, os.path.join(REPO, yaml))
        cfg.MODEL.BACKBONE.NAME = name
    cfg.INPUT.SIZE = (IMAGE_SIZE, IMAGE_SIZE)
    cfg.DATASET.NAME = "OxfordPets"
    node = cfg.TRAINER[trainer]
    node.PREC = "fp32"
    for key in ("PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT", "PROMPT_DEPTH"):
        if key in node:
            node[key] = 2
    return set_keys(cfg, opts)


def images(n=2, seed=0):
    return torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def open_clip_logits(model, prompts, image):
    """open_clip's own zero-shot classifier: its encode_text / encode_image and its logit scale and bias."""
    with torch.no_grad():
        text = F.normalize(model.encode_text(model.tokenizer(prompts)), dim=-1)
        image = F.normalize(model.encode_image(image), dim=-1)
        logits = model.logit_scale.exp() * image @ text.t()
        return (logits + model.logit_bias if model.logit_bias is not None else logits), text


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_seam_reads_the_familys_config_and_tokenizer(family_names, family):
    model = frozen_model(family_names[family])
    tower = text_tower(model)
    for key, value in EXPECTED[family].items():
        assert getattr(tower, key) == value, key
    assert tower.tokenizer is model.tokenizer
    assert (tower.logit_bias is not None) == family.startswith("siglip")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_zero_shot_equals_open_clips_classifier(family_names, family):
    trainer = bare_trainer(ZeroshotCLIP, cfg_for(family_names[family]))
    prompts = [f"a photo of a {name}, a type of pet." for name in NAMES]
    expected, text = open_clip_logits(trainer.clip_model, prompts, images())
    torch.testing.assert_close(trainer.class_features(), text, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(trainer.model_inference(images()), expected, rtol=1e-5, atol=1e-4)


# Every family at the end position; middle and front (class tokens moved) on a family without a start token.
POSITIONS = [(family, "end") for family in sorted(FAMILIES)] + [("siglip", "middle"), ("siglip", "front")]


@pytest.mark.parametrize("family,position", POSITIONS)
def test_coop_context_from_the_template_words_gives_open_clips_features(family_names, family, position):
    """CTX_INIT "a photo of a": at the end position the prompts are the template's text, so the class
    features are open_clip's for that text; every position scores with the model's logit bias."""
    cfg = cfg_for(family_names[family], **{"TRAINER.COOP.CTX_INIT": "a photo of a"})
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = position
    trainer = bare_trainer(CoOp, cfg)
    features = trainer.class_features()
    image = images()
    logits = trainer.model_inference(image)
    model = frozen_model(family_names[family])
    expected, text = open_clip_logits(model, [f"a photo of a {name}." for name in NAMES], image)
    if position == "end":
        torch.testing.assert_close(features, text, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-4)
    scale, bias = trainer.logit_scale(), trainer.logit_bias()
    direct = scale * trainer.image_features(image) @ features.t() + (0 if bias is None else bias)
    torch.testing.assert_close(logits, direct, rtol=1e-5, atol=1e-4)
    assert (bias is not None) == family.startswith("siglip")


@pytest.mark.parametrize("start_token", [False, True])
def test_siglip2_reads_gemmas_tokenizer_through_open_clip(family_names, tmp_path, start_token):
    """SigLIP 2's tokenizer is Gemma's, which open_clip loads as a Hugging Face tokenizer (its HFTokenizer
    over transformers' GemmaTokenizer: <pad> 0, <eos> 1, <bos> 2). The seam probes its layout: the text
    first (after <bos> where the tokenizer adds one, which SigLIP 2's does not), <eos> right after it,
    <pad> up to 64 positions, the features read at the last one; they are open_clip's encode_text, and a
    CoOp context from the template's words gives open_clip's class features."""
    import shutil

    from coop_toolkit.trainers.clip_backbone import TextEncoder
    from tools.tiny_families import gemma_tokenizer

    folder = tmp_path / "siglip2"
    shutil.copytree(family_names["siglip2"].partition(":")[2], folder)
    gemma_tokenizer(str(folder), add_bos_token=start_token)  # the same vocabulary, with or without <bos>
    name = f"local-dir:{folder}"
    model = load_clip(name)
    tower = text_tower(model)
    assert type(tower.tokenizer).__name__ == "HFTokenizer"  # open_clip.get_tokenizer's, from the folder
    assert tower.tokenizer.tokenizer.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "<eos>", "<bos>"]
    lead = int(start_token)
    assert (tower.lead, tower.trail, tower.context_length, tower.pool_type) == (lead, 1, 64, "last")
    text = "a photo of a great pyrenees."
    n = tower.count_tokens(text)
    ids = tower.tokenize([text])
    assert torch.equal(ids, model.tokenizer([text])) and ids.shape == (1, 64)
    assert ids[0, :lead].tolist() == [2] * lead and (ids[0, lead : lead + n] > 4).all()  # > 4: not a special
    assert ids[0, lead + n] == 1 and (ids[0, lead + n + 1 :] == 0).all()
    assert tower.pooled_positions(ids).tolist() == [63]
    with torch.no_grad():
        got = TextEncoder(model)(tower.embed(ids), ids)
        torch.testing.assert_close(got, model.encode_text(ids), rtol=1e-5, atol=1e-5)
    trainer = bare_trainer(CoOp, cfg_for(name, **{"TRAINER.COOP.CTX_INIT": "a photo of a"}))
    expected = open_clip_logits(model, [f"a photo of a {cls}." for cls in NAMES], images())[1]
    torch.testing.assert_close(trainer.class_features(), expected, rtol=1e-5, atol=1e-5)


def one_step(trainer):
    before = {n: p.detach().clone() for n, p in trainer.learned_parameters().items()}
    trainer.forward_backward({"img": images(4), "label": torch.arange(4) % len(CLASSNAMES)})
    moved = {n for n, p in trainer.learned_parameters().items() if not torch.equal(p, before[n])}
    frozen = [n for n, p in trainer.model.named_parameters() if p.requires_grad and n not in before]
    return moved, frozen


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_coop_step_moves_only_the_context(family_names, family):
    cfg = cfg_for(family_names[family], **{"TRAINER.COOP.N_CTX": 4})
    moved, frozen = one_step(bare_trainer(CoOp, cfg))
    assert moved == {"prompt_learner.ctx"} and not frozen


# Why MaPLe cannot reach the image tower's blocks, for the families where it cannot.
ROPE = "rotary position embeddings"
VISION_REFUSALS = {"eva02": ROPE, "pe": ROPE, "mobileclip": "FastVit, not"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_maple_step_or_a_refusal_naming_the_model_and_why(family_names, family):
    cfg = cfg_for(family_names[family], trainer="MAPLE", **{"TRAINER.MAPLE.PROMPT_DEPTH": 2})
    if family in VISION_REFUSALS:
        why = VISION_REFUSALS[family]
        with pytest.raises(UnsupportedBackboneError, match=f"MaPLe.*{re.escape(family_names[family])}.*{why}"):
            bare_trainer(MaPLe, cfg)
        return
    moved, frozen = one_step(bare_trainer(MaPLe, cfg))
    assert {"prompt_learner.ctx", "prompt_learner.proj.weight"} <= moved and not frozen


@pytest.mark.parametrize("method", ["IVLP", "VPT", "PromptSRC"])
def test_every_deep_prompt_method_trains_on_a_timm_vit(family_names, method):
    """SigLIP's image tower is timm's VisionTransformer (attention-pool head): the vision prompts reach it."""
    from dasslite.engine.build import TRAINER_REGISTRY

    trainer_cls = TRAINER_REGISTRY.get(method)
    trainer = bare_trainer(trainer_cls, cfg_for(family_names["siglip"], trainer=trainer_cls.config_node))
    moved, frozen = one_step(trainer)
    assert any(name.startswith("vision_prompts") for name in moved) and not frozen


def test_the_prompted_timm_vit_without_prompts_is_the_tower_and_prompts_get_gradients(family_names):
    from coop_toolkit.trainers.prompted_encoders import prompted_image_features

    visual = frozen_model(family_names["siglip"]).visual.requires_grad_(False)  # gradients reach the prompts only
    image = images()
    with torch.no_grad():
        unprompted = visual(image)
        torch.testing.assert_close(prompted_image_features(visual, image), unprompted, rtol=1e-5, atol=1e-5)
    shallow = torch.zeros(3, 64, requires_grad=True)
    deep = [torch.zeros(3, 64, requires_grad=True)]
    prompted = prompted_image_features(visual, image, shallow, deep)
    assert not torch.allclose(prompted, unprompted)
    prompted.sum().backward()
    assert shallow.grad.abs().sum() > 0 and deep[0].grad.abs().sum() > 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_prompt_longer_than_the_context_is_refused_naming_the_limit(family_names, family):
    limit = EXPECTED[family]["context_length"]
    long_name = " ".join(["terrier"] * limit)
    with pytest.raises(ConfigError, match=f"reads {limit} "):
        bare_trainer(CoOp, cfg_for(family_names[family]), classnames=["beagle", long_name])
    with pytest.raises(ConfigError, match=f"between 1 and {limit - 3 + (1 - EXPECTED[family]['lead'])}"):
        bare_trainer(CoOp, cfg_for(family_names[family], **{"TRAINER.COOP.N_CTX": limit}))


@pytest.mark.parametrize("family", ["siglip", "mobileclip"])
def test_the_api_preprocesses_with_the_familys_values_and_scores_with_its_bias(family_names, family):
    """zero_shot on a family: its own mean / std / interpolation (open_clip's preprocess_cfg), and logits
    equal open_clip's classifier on the same preprocessed images."""
    from coop_toolkit.api import zero_shot

    run = zero_shot(CLASSNAMES, family_names[family], dataset_name="OxfordPets")
    model = frozen_model(family_names[family])
    expected = model.visual.preprocess_cfg
    assert run.preprocess_record["mean"] == list(expected["mean"])
    assert run.preprocess_record["std"] == list(expected["std"])
    assert run.preprocess_record["interpolation"] == expected["interpolation"]
    squash = expected["resize_mode"] == "squash"  # SigLIP: the whole image, no crop
    assert run.preprocess_record["resize"] == ([IMAGE_SIZE, IMAGE_SIZE] if squash else IMAGE_SIZE)
    image = picture()
    batch = run.preprocess(image).unsqueeze(0)
    assert torch.equal(batch[0], open_clip_preprocess(family_names[family])(image))
    prompts = [f"a photo of a {name}, a type of pet." for name in NAMES]
    torch.testing.assert_close(run.logits([image]), open_clip_logits(model, prompts, batch)[0], rtol=1e-5, atol=1e-4)


def test_the_readme_table_is_the_one_the_code_generates():
    from coop_toolkit.backbone_families import table

    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    held = readme.split("<!-- families table -->\n")[1].split("\n<!-- end families table -->")[0]
    assert held == table(), "README's backbone table is stale: python -m coop_toolkit.backbone_families"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_trimming_only_under_a_causal_mask(family_names, family):
    """A causal tower computes up to the last pooled position; any other runs every position (each one
    attends to all, so cutting the padding would change the features)."""
    tower = text_tower(frozen_model(family_names[family]))
    ids = tower.tokenize(["a photo of a dog.", "a photo of a great pyrenees."])
    expected = int(tower.pooled_positions(ids).max()) + 1 if tower.causal else tower.context_length
    assert tower.used_length(ids) == expected
    assert (expected < tower.context_length) == EXPECTED[family]["causal"]


def test_a_padding_mask_is_the_one_open_clip_builds(family_names):
    """Where a tower masks padding (use_pad_mask), the seam's mask is open_clip's own."""
    model = load_clip(family_names["mobileclip"])
    model.text.use_pad_mask = True
    tower = text_tower(model)
    ids = tower.tokenize(["a photo of a dog.", "a beagle."])
    length = ids.shape[1]
    expected = model.text._build_additive_mask(ids, length, torch.float32)
    assert torch.equal(tower.attention_mask(ids, length, "cpu"), expected)
    with torch.no_grad():
        from coop_toolkit.trainers.clip_backbone import TextEncoder

        got = TextEncoder(model)(tower.embed(ids), ids)
        torch.testing.assert_close(got, model.encode_text(ids), rtol=1e-5, atol=1e-5)


def test_run_json_records_the_family_and_its_tokenizer(family_names):
    from coop_toolkit.run_record import make_run_record

    record = make_run_record(cfg_for(family_names["siglip"]), CLASSNAMES)["family"]
    assert record["context_length"] == 64 and record["model_class"] == "CustomTextCLIP"
    assert record["image_tower"] == "timm tiny_vit_base_patch16_siglip_224"
    assert record["tokenizer"] == "local"  # the folder's own tokenizer files (open_clip's local-dir layout)
    from coop_toolkit.trainers.backbone_config import family_record

    assert family_record("ViT-B-16-SigLIP2:webli")["tokenizer"] == "timm/ViT-B-16-SigLIP2"
    assert family_record("PE-Core-B-16:meta")["context_length"] == 32
    assert family_record("ViT-B/16") == {
        "model_class": "CLIP",
        "image_tower": "open_clip",
        "tokenizer": "open_clip SimpleTokenizer (CLIP BPE)",
        "context_length": 77,
    }


def test_an_exported_head_carries_the_logit_bias(family_names, tmp_path):
    """SigLIP scores with a bias; the exported head holds it so that open_clip alone gives the logits."""
    from safetensors.torch import load_file

    from coop_toolkit.api import zero_shot
    from coop_toolkit.export_head import export_run

    run = zero_shot(CLASSNAMES, family_names["siglip"], dataset_name="OxfordPets")
    card = export_run(run, str(tmp_path / "head.safetensors"))
    head = load_file(str(tmp_path / "head.safetensors"))
    assert card["usage"].endswith("+ logit_bias") and float(head["logit_bias"]) == -2.0
    image = images()
    features = F.normalize(run.trainer.clip_model.encode_image(image), dim=-1)
    logits = head["logit_scale"] * features @ head["text_features"].t() + head["logit_bias"]
    torch.testing.assert_close(logits, run.trainer.model_inference(image), rtol=1e-5, atol=1e-4)


def test_interpret_prompt_reads_the_familys_own_vocabulary(family_names):
    from interpret_prompt import vocabulary

    tokenizer = text_tower(frozen_model(family_names["siglip"])).tokenizer
    words = vocabulary(tokenizer)
    assert words[tokenizer.tokenizer.eos_token_id] == "</s>" and len(words) == len(tokenizer.tokenizer)


@pytest.mark.parametrize("family", ["siglip", "pe"])
def test_every_registered_method_trains_or_refuses_by_name(family_names, family):
    """Registry-wide: each method takes a step on the family (zero-shot: classifies), or its trainer
    refuses the backbone naming the model, only where the image tower cannot take prompts."""
    from coop_toolkit.backbone_families import method_support
    from coop_toolkit.method_card import card_of
    from dasslite.engine.build import TRAINER_REGISTRY

    for method in TRAINER_REGISTRY.registered_names():
        trainer_cls = TRAINER_REGISTRY.get(method)
        if not trainer_cls.__module__.startswith("coop_toolkit."):
            continue
        cfg = cfg_for(family_names[family], trainer_cls.config_node, card_of(trainer_cls).reference_config)
        try:
            trainer = bare_trainer(trainer_cls, cfg)
        except UnsupportedBackboneError as err:  # only where the README's table (the declarations) says so
            assert method_support(trainer_cls, frozen_model(family_names[family])) != "yes", (method, err)
            assert family_names[family] in str(err)
            continue
        if trainer.learns_nothing or not trainer.learns_by_gradient:
            assert trainer.model_inference(images()).shape == (2, len(CLASSNAMES)), method
            continue
        moved, frozen = one_step(trainer)
        assert moved and not frozen, method


def test_train_py_trains_coop_on_siglip_and_the_run_folder_predicts(family_names, tmp_path):
    """The user's path: train.py with MODEL.BACKBONE.NAME local-dir:... and the yaml's OpenAI input
    values, which become SigLIP's own (said once in log.txt; config.yaml and run.json record them); then
    load_run preprocesses as open_clip does and predicts what the run's own model computes."""
    import json

    from coop_toolkit.api import load_run, run_config
    from tests import test_train_cli

    data_root = str(tmp_path / "data")
    from tests.datasets.layouts import build_oxford_pets

    build_oxford_pets(data_root)
    out = tmp_path / "run"
    opts = ("OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "1", "TRAINER.COOP.PREC", "fp32")
    name = family_names["siglip"]
    test_train_cli.run(data_root, out, name, "CoOp", test_train_cli.COOP_CFG, opts=opts)
    record = json.load(open(out / "run.json"))
    assert record["family"]["context_length"] == 64 and record["backbone"]["open_clip_model"].startswith("local-dir:")
    assert record["preprocess"]["resize"] == [IMAGE_SIZE, IMAGE_SIZE] and record["preprocess"]["mean"] == [0.5] * 3
    saved = run_config(str(out)).INPUT  # config.yaml
    assert saved.TEST_RESIZE == "squash" and saved.SIZE == (IMAGE_SIZE, IMAGE_SIZE) and saved.PIXEL_STD == [0.5] * 3
    assert (out / "log.txt").read_text().count("own preprocessing (open_clip's config) replaces") == 1
    run = load_run(str(out))
    image = picture()
    batch = run.preprocess(image).unsqueeze(0)
    assert torch.equal(batch[0], open_clip_preprocess(name)(image))
    torch.testing.assert_close(run.logits([image]), run.trainer.model_inference(batch), rtol=1e-5, atol=1e-5)
    assert run.logit_bias() is not None


_OPEN_CLIP_PREPROCESS = {}


def open_clip_preprocess(name):
    """open_clip's own test-time preprocessing of the model (create_model_and_transforms' third)."""
    import open_clip

    if name not in _OPEN_CLIP_PREPROCESS:
        _OPEN_CLIP_PREPROCESS[name] = open_clip.create_model_and_transforms(name)[2]
    return _OPEN_CLIP_PREPROCESS[name]


def picture(seed=0):
    """A random RGB image of another size and aspect than the model's input (resize and crop matter)."""
    from PIL import Image

    pixels = torch.randint(0, 256, (80, 120, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def yaml_cfg(name, **opts):
    """The config train.py merges from CoOp's ViT-B/16 yaml (INPUT at OpenAI's values) for backbone `name`."""
    from coop_toolkit.api import get_cfg

    return set_keys(
        get_cfg("CoOp", os.path.join(REPO, "configs/trainers/CoOp/vit_b16_ctxv1.yaml")),
        {"MODEL.BACKBONE.NAME": name, **opts},
    )


def test_a_siglip_run_trains_and_tests_with_its_own_preprocessing(family_names, caplog):
    """The INPUT keys the yaml left at OpenAI's values become SigLIP's (size, mean, std, squash resize):
    the train pipeline normalises with them and the test pipeline is open_clip's own preprocess."""
    from coop_toolkit.trainers.backbone_config import adopt_family_input
    from dasslite.data.transforms import build_transform

    name = family_names["siglip"]
    cfg = yaml_cfg(name)
    lines = adopt_family_input(cfg)
    assert cfg.INPUT.SIZE == (IMAGE_SIZE, IMAGE_SIZE) and cfg.INPUT.TEST_RESIZE == "squash"
    assert cfg.INPUT.PIXEL_MEAN == [0.5] * 3 and cfg.INPUT.PIXEL_STD == [0.5] * 3
    assert [level for level, _ in lines] == [logging.INFO] and "INPUT.TEST_RESIZE squash" in lines[0][1]
    train = build_transform(cfg, is_train=True)
    crop, normalize = train.transforms[0], train.transforms[-1]
    assert crop.size == (IMAGE_SIZE, IMAGE_SIZE) and crop.interpolation.value == "bicubic"
    assert list(normalize.mean) == [0.5] * 3 and list(normalize.std) == [0.5] * 3
    assert torch.equal(build_transform(cfg, is_train=False)(picture()), open_clip_preprocess(name)(picture()))


def test_an_hf_hub_backbone_reads_its_preprocessing_from_the_model(family_names, monkeypatch):
    """hf-hub: keeps its open_clip config on the hub; the values come from the model, loaded once."""
    from coop_toolkit.trainers import backbone_config

    loads = []
    monkeypatch.setattr(
        backbone_config, "load_clip", lambda name: loads.append(name) or frozen_model(family_names["siglip"])
    )
    expected = backbone_config.family_input(family_names["siglip"])
    assert backbone_config.family_input("hf-hub:org/siglip") == expected and loads == ["hf-hub:org/siglip"]


def test_values_set_explicitly_are_kept_with_one_warning(family_names):
    from coop_toolkit.trainers.backbone_config import adopt_family_input

    cfg = yaml_cfg(family_names["siglip"], **{"INPUT.PIXEL_MEAN": [0.4] * 3, "INPUT.INTERPOLATION": "bilinear"})
    lines = adopt_family_input(cfg)
    assert cfg.INPUT.PIXEL_MEAN == [0.4] * 3 and cfg.INPUT.INTERPOLATION == "bilinear"
    assert cfg.INPUT.PIXEL_STD == [0.5] * 3  # left at the yaml's value: the family's
    assert [level for level, _ in lines] == [logging.INFO, logging.WARNING]
    assert "INPUT.PIXEL_MEAN [0.4, 0.4, 0.4] (its own: [0.5, 0.5, 0.5])" in lines[1][1]
    assert "INPUT.INTERPOLATION bilinear (its own: bicubic)" in lines[1][1]


def test_an_openai_style_backbone_keeps_the_yamls_config(family_names, tiny_clip_path):
    """OpenAI's preprocessing is the yaml's: at the model's size nothing is adopted, the config stays as merged."""
    from coop_toolkit.trainers.backbone_config import adopt_family_input

    tiny = (IMAGE_SIZE, IMAGE_SIZE)
    for name, size in ((family_names["openai"], tiny), (tiny_clip_path, (224, 224)), ("ViT-B/16", (224, 224))):
        cfg = yaml_cfg(name, **{"INPUT.SIZE": size})
        before = cfg.dump()
        assert adopt_family_input(cfg) == [] and cfg.dump() == before, name


def test_the_models_a_family_lists_share_its_text_tower():
    """The README row shows the family's first model; open_clip's configs of the others must agree."""
    import open_clip

    from coop_toolkit.backbone_families import FAMILIES

    keys = ("context_length", "pool_type", "no_causal_mask", "vocab_size")
    for family in FAMILIES:
        configs = [open_clip.get_model_config(name)["text_cfg"] for name in family.models]
        facts = {tuple(c.get(k) for k in keys) for c in configs}
        assert len(facts) == 1, (family.name, facts)
