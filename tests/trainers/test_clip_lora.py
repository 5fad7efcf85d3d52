"""CLIP-LoRA: LoRA where the authors put it, logits from a direct computation (merged and unmerged), only
the LoRA pairs learn, the recipe's iteration count and schedule, and the authors' save_lora file loads."""

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from coop_toolkit.trainers.clip_lora import CLIPLoRA, authors_path, save_lora
from dasslite.errors import CheckpointError
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of, clip_fp32, make_cfg

PROJ = {"q_proj": 0, "k_proj": 1, "v_proj": 2}
SCALING = 1 / math.sqrt(2)  # alpha / sqrt(r) with the defaults


def lora_cfg(path, **opts):
    return make_cfg(path, **{"TRAINER.CLIP_LORA.PREC": "fp32", **opts})


@pytest.fixture(scope="module")
def trainer(tiny_clip_path):
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPLoRA, lora_cfg(tiny_clip_path))
    with torch.no_grad():  # B starts at zero: give it values so that LoRA changes the logits
        for name, p in trainer.model.lora.named_parameters():
            if name.endswith("w_lora_B"):
                p.normal_(0, 0.2)
    return trainer


def test_lora_sits_on_qkv_of_every_block_text_first_with_the_authors_init(tiny_clip_path):
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPLoRA, lora_cfg(tiny_clip_path))
    lora = trainer._models["lora"]
    text_width, vision_width = 64, 64  # the tiny CLIP: 2 blocks per tower
    assert sorted(lora) == ["layer_0", "layer_1", "layer_2", "layer_3"]
    assert lora["layer_0"]["q_proj"] is trainer.model.text_encoder.transformer.resblocks[0].attn.q_proj
    assert lora["layer_2"]["v_proj"] is trainer.model.image_encoder.transformer.resblocks[0].attn.v_proj
    shapes = {k: tuple(v.shape) for k, v in lora.state_dict().items()}
    assert shapes["layer_0.q_proj.w_lora_A"] == (2, text_width) and shapes["layer_3.k_proj.w_lora_B"] == (
        vision_width,
        2,
    )
    assert len(shapes) == 4 * 3 * 2
    assert all(not v.any() for k, v in lora.state_dict().items() if k.endswith("B"))
    bound = 1 / math.sqrt(text_width)  # kaiming_uniform(a=sqrt(5)) on (r, in): U(-1/sqrt(in), 1/sqrt(in))
    a = lora["layer_0"]["q_proj"].w_lora_A
    assert a.abs().max() <= bound and a.abs().max() > bound / 2
    assert trainer.model.text_encoder.transformer.resblocks[0].attn.scaling == pytest.approx(1 / math.sqrt(2))


def direct_logits(clip, lora_state, image, scaling=SCALING):
    """CLIP with W_qkv + scaling * B A added per block (text blocks layer_0.., then vision), computed by
    open_clip's own encode_image / encode_text on a patched copy; 100 * cosine."""
    towers = [clip.transformer, clip.visual.transformer]
    blocks = [b for tower in towers for b in tower.resblocks]
    with torch.no_grad():
        for i, block in enumerate(blocks):
            w = block.attn.in_proj_weight
            for proj, j in PROJ.items():
                a, b = lora_state[f"layer_{i}.{proj}.w_lora_A"], lora_state[f"layer_{i}.{proj}.w_lora_B"]
                w[j * w.shape[1] : (j + 1) * w.shape[1]] += scaling * b @ a
        f = F.normalize(clip.encode_image(image), dim=-1)
        t = F.normalize(
            clip.encode_text(tokenize([f"a photo of a {c.replace('_', ' ')}." for c in CLASSNAMES])), dim=-1
        )
    return 100 * f @ t.t()


def test_eval_logits_equal_clip_with_the_merged_weights(trainer, tiny_clip_path):
    image = batch_of()["img"]
    trainer.set_model_mode("eval")
    expected = direct_logits(clip_fp32(tiny_clip_path), trainer.model.lora.state_dict(), image)
    got = trainer.model_inference(image)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)  # (tests/test_use.py checks the protocol)


def test_training_forward_without_dropout_equals_the_merged_eval_forward(trainer):
    """The unmerged path (own projections + SDPA) and the merged one (torch's attention) agree."""
    image = batch_of()["img"]
    trainer.set_model_mode("eval")
    merged = trainer.model(image)
    trainer.set_model_mode("train")
    attns = [m for m in trainer.model.lora.modules() if type(m).__name__ == "LoRA"]
    rates = [m.dropout.p for m in attns]
    try:
        for m in attns:
            m.dropout.p = 0.0
        unmerged = trainer.model(image)
    finally:
        for m, p in zip(attns, rates):
            m.dropout.p = p
        trainer.set_model_mode("eval")
    torch.testing.assert_close(unmerged, merged, rtol=0, atol=1e-4)


def test_dropout_acts_on_the_lora_input_only(tiny_clip_path):
    """With B = 0 the LoRA branch adds nothing, so dropout (0.25, training mode) must leave the logits as
    the frozen CLIP's: the base path never sees dropped inputs."""
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPLoRA, lora_cfg(tiny_clip_path))
    image = batch_of()["img"]
    trainer.set_model_mode("train")
    with torch.no_grad():
        train_logits = trainer.model(image)
    expected = direct_logits(clip_fp32(tiny_clip_path), trainer.model.lora.state_dict(), image)
    torch.testing.assert_close(train_logits, expected, rtol=0, atol=1e-4)


def test_gradients_reach_only_the_lora_pairs(tiny_clip_path):
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPLoRA, lora_cfg(tiny_clip_path))
    trainer.sched = torch.optim.lr_scheduler.CosineAnnealingLR(trainer.optim, 10, eta_min=1e-6)
    trainer.set_model_mode("train")
    trainer.forward_backward(batch_of())
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad == {f"lora.{k}" for k in trainer.model.lora.state_dict()}
    assert trainer.optim.param_groups[0]["lr"] < trainer.cfg.OPTIM.LR  # stepped per iteration


def test_the_authors_file_round_trips_and_loads_by_folder(trainer, tmp_path):
    cfg = trainer.cfg.clone()
    cfg.defrost()
    cfg.TRAINER.CLIP_LORA.SAVE_PATH, cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME = str(tmp_path), "ViT-B/16", "DTD"
    cfg.DATASET.NUM_SHOTS, cfg.SEED = 16, 1
    path = authors_path(cfg)
    assert path == str(tmp_path / "vitb16" / "dtd" / "16shots" / "seed1" / "lora_weights.pt")
    # Their layout written by hand: nested dicts and their metadata.
    generator = torch.Generator().manual_seed(5)
    weights = {layer: {} for layer in trainer.model.lora}
    for layer, pairs in trainer.model.lora.items():
        for proj, pair in pairs.items():
            weights[layer][proj] = {k: torch.randn(v.shape, generator=generator) for k, v in pair.state_dict().items()}
    meta = {"r": 2, "alpha": 1, "encoder": "both", "params": ["q", "k", "v"], "position": "all"}
    (tmp_path / "theirs").mkdir()
    torch.save({"weights": weights, "metadata": meta}, tmp_path / "theirs" / "lora_weights.pt")
    trainer.load_model(str(tmp_path / "theirs"))
    assert torch.equal(trainer.model.lora["layer_3"]["v_proj"].w_lora_B, weights["layer_3"]["v_proj"]["w_lora_B"])
    save_lora(trainer.model.lora, path, trainer.opts)
    saved = torch.load(path, weights_only=True)
    assert saved["metadata"] == meta and torch.equal(
        saved["weights"]["layer_1"]["k_proj"]["w_lora_A"], weights["layer_1"]["k_proj"]["w_lora_A"]
    )
    torch.save({"weights": weights, "metadata": {**meta, "r": 4}}, tmp_path / "theirs" / "lora_weights.pt")
    with pytest.raises(CheckpointError, match="TRAINER.CLIP_LORA.R"):
        trainer.load_model(str(tmp_path / "theirs"))


def test_text_only_lora_leaves_the_image_encoder_as_open_clips(tiny_clip_path):
    """ENCODER text: the image features are the frozen CLIP's, so an exported head could serve it."""
    torch.manual_seed(0)
    trainer = bare_trainer(CLIPLoRA, lora_cfg(tiny_clip_path, **{"TRAINER.CLIP_LORA.ENCODER": "text"}))
    assert sorted(trainer.model.lora) == ["layer_0", "layer_1"] and trainer.frozen_image_encoder
    image = batch_of()["img"]
    with torch.no_grad():
        expected = F.normalize(clip_fp32(tiny_clip_path).visual(image), dim=-1)
    torch.testing.assert_close(trainer.image_features(image), expected, rtol=0, atol=1e-5)
