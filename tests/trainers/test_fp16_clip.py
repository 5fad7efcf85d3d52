"""CLIP in fp16 with fp32 learned parameters (what PREC fp16 runs on every GPU), forced here on CPU, for
every registered trainer (built from its card's reference config): its step runs, its loss is finite,
only its learned parameters get gradients, and its logits are within 1e-2 of the fp32 model's."""

import pytest
import torch

import coop_toolkit as ct
from coop_toolkit.trainers import learner
from dasslite.engine.build import TRAINER_REGISTRY
from tests.precision_matrix import copy_learned_state, toolkit_trainers, trainer_config
from tests.trainers.helpers import bare_trainer, batch_of

TRAINERS = toolkit_trainers()  # every registered trainer: the toolkit's and the installed plugins'
LEARNING = [n for n in TRAINERS if not TRAINER_REGISTRY.get(n).learns_nothing]
ZERO_SHOT = [n for n in TRAINERS if TRAINER_REGISTRY.get(n).learns_nothing]


def tiny_cfg(name, path):
    """The trainer's reference config on the 2-layer tiny CLIP: its prompt depths cut to 2 layers."""
    cfg = ct.get_cfg(trainer=name, config_file=trainer_config(name))
    cfg.MODEL.BACKBONE.NAME, cfg.DATASET.NAME = path, "OxfordPets"
    for node in cfg.TRAINER.values():
        for key in [k for k in (node if isinstance(node, dict) else {}) if "DEPTH" in k]:
            node[key] = min(node[key], 2)
    return cfg


def build(name, path, prec, monkeypatch):
    """The trainer with CLIP in `prec` even on CPU (where PREC fp16 would fall back to fp32)."""
    with monkeypatch.context() as m:
        m.setattr(learner, "resolve_precision", lambda *args: prec)
        torch.manual_seed(0)
        return bare_trainer(TRAINER_REGISTRY.get(name), tiny_cfg(name, path))


@pytest.mark.parametrize("name", LEARNING)
def test_fp16_clip_step_with_fp32_learned_parameters(name, tiny_clip_path, monkeypatch):
    half = build(name, tiny_clip_path, "fp16", monkeypatch)
    full = build(name, tiny_clip_path, "fp32", monkeypatch)
    assert half.model.image_encoder.conv1.weight.dtype == torch.float16
    learned = set(half.learned_parameters())
    assert all(p.dtype == torch.float32 for p in half.learned_parameters().values())
    # The same learned values in both: a random context drawn in fp16 need not equal one drawn in fp32
    # (torch 2.11's CPU normal_ differs by dtype), and only the precision of CLIP is compared here.
    copy_learned_state(full, half)
    images = batch_of(n=2)["img"]
    with torch.no_grad():
        expected = full.model_inference(images)
        diff = (half.model_inference(images) - expected).abs().max().item()
    # relative to the largest logit, as tests/precision_matrix.LOGIT_TOLERANCE: the scale multiplies every
    # rounding (CLIP's learned one, 14 for the tiny CLIP, or a method's fixed 100)
    assert diff / max(1.0, expected.abs().max().item()) < 1e-2
    if not learned:  # nothing learns by gradient (Tip-Adapter's cache is built from features, not trained)
        return

    # Two steps: a parameter may get a zero gradient at its initial values only (LoRA's A while B is 0)
    for seed in (1, 2):
        summary = half.forward_backward(batch_of(n=2, seed=seed))
        assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    graded = {n for n, p in half.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert graded == learned  # every learned parameter (every prompt of every layer), nothing else


@pytest.mark.parametrize("name", ZERO_SHOT)
def test_fp16_zero_shot_logits_match_fp32(name, tiny_clip_path, monkeypatch):
    half = build(name, tiny_clip_path, "fp16", monkeypatch)
    full = build(name, tiny_clip_path, "fp32", monkeypatch)
    assert half.clip_model.visual.conv1.weight.dtype == torch.float16
    images = batch_of(n=2)["img"]
    logits = half.model_inference(images)
    assert torch.isfinite(logits).all()
    assert (logits - full.model_inference(images)).abs().max().item() < 1e-2
