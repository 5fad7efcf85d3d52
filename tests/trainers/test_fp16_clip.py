"""CLIP in fp16 with fp32 learned parameters (what PREC fp16 runs on every GPU), forced here on CPU:
each trainer's step runs, its loss is finite, only its learned parameters get gradients, and its
logits are within 1e-2 of the fp32 model's."""

import pytest
import torch

from coop_toolkit.trainers import learner
from coop_toolkit.trainers.cocoop import CoCoOp
from coop_toolkit.trainers.coop import CoOp
from coop_toolkit.trainers.kgcoop import KgCoOp
from coop_toolkit.trainers.prograd import ProGrad
from coop_toolkit.trainers.zsclip import ZeroshotCLIP, ZeroshotCLIP2
from tests.precision_matrix import copy_learned_state
from tests.trainers.helpers import bare_trainer, batch_of, make_cfg

OPTS = {
    "DATASET.NAME": "OxfordPets",
    "LOSS.NAME": "prograd",
    "TRAINER.COOP.N_CTX": 4,
    "TRAINER.COCOOP.N_CTX": 4,
    "TRAINER.COOP.CTX_INIT": "a photo of a",
}


def build(trainer_cls, path, prec, monkeypatch):
    """The trainer with CLIP in `prec` even on CPU (where PREC fp16 would fall back to fp32)."""
    with monkeypatch.context() as m:
        m.setattr(learner, "resolve_precision", lambda *args: prec)
        torch.manual_seed(0)
        return bare_trainer(trainer_cls, make_cfg(path, **OPTS))


@pytest.mark.parametrize("trainer_cls", [CoOp, CoCoOp, KgCoOp, ProGrad])
def test_fp16_clip_step_with_fp32_learned_parameters(trainer_cls, tiny_clip_path, monkeypatch):
    half = build(trainer_cls, tiny_clip_path, "fp16", monkeypatch)
    full = build(trainer_cls, tiny_clip_path, "fp32", monkeypatch)
    assert half.model.image_encoder.conv1.weight.dtype == torch.float16
    learned = set(half.learned_parameters())
    assert all(p.dtype == torch.float32 for p in half.learned_parameters().values())
    # The same learned values in both: a random context drawn in fp16 need not equal one drawn in fp32
    # (torch 2.11's CPU normal_ differs by dtype), and only the precision of CLIP is compared here.
    copy_learned_state(full, half)
    images = batch_of(n=2)["img"]
    with torch.no_grad():
        diff = (half.model_inference(images) - full.model_inference(images)).abs().max().item()
    assert diff < 1e-2

    summary = half.forward_backward(batch_of(n=2, seed=1))
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    graded = {n for n, p in half.model.named_parameters() if p.grad is not None}
    assert graded == learned
    assert half.model.prompt_learner.ctx.grad.abs().sum() > 0


@pytest.mark.parametrize("trainer_cls", [ZeroshotCLIP, ZeroshotCLIP2])
def test_fp16_zero_shot_logits_match_fp32(trainer_cls, tiny_clip_path, monkeypatch):
    half = build(trainer_cls, tiny_clip_path, "fp16", monkeypatch)
    full = build(trainer_cls, tiny_clip_path, "fp32", monkeypatch)
    assert half.clip_model.visual.conv1.weight.dtype == torch.float16
    images = batch_of(n=2)["img"]
    logits = half.model_inference(images)
    assert torch.isfinite(logits).all()
    assert (logits - full.model_inference(images)).abs().max().item() < 1e-2
