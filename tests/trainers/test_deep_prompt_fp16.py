"""MaPLe, IVLP, VPT, PromptSRC with CLIP in fp16 and fp32 prompts (PREC fp16 on a GPU), forced on CPU."""

import pytest
import torch

from coop_toolkit.trainers.ivlp import IVLP
from coop_toolkit.trainers.maple import MaPLe
from coop_toolkit.trainers.promptsrc import PromptSRC
from coop_toolkit.trainers.vpt import VPT
from tests.trainers.helpers import batch_of
from tests.trainers.test_fp16_clip import build

DEPTHS = {
    "MAPLE": ("PROMPT_DEPTH",),
    "VPT": ("PROMPT_DEPTH_VISION",),
    "IVLP": ("PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT"),
    "PROMPTSRC": ("PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT"),
}


@pytest.mark.parametrize("trainer_cls", [MaPLe, IVLP, VPT, PromptSRC])
def test_fp16_clip_step_reaches_every_prompt(trainer_cls, tiny_clip_path, monkeypatch):
    node = trainer_cls.config_node
    monkeypatch.setattr(
        "tests.trainers.test_fp16_clip.OPTS",
        {"DATASET.NAME": "OxfordPets", **{f"TRAINER.{node}.{key}": 2 for key in DEPTHS[node]}},
    )
    half = build(trainer_cls, tiny_clip_path, "fp16", monkeypatch)
    full = build(trainer_cls, tiny_clip_path, "fp32", monkeypatch)
    assert half.model.image_encoder.conv1.weight.dtype == torch.float16
    assert all(p.dtype == torch.float32 for p in half.learned_parameters().values())
    images = batch_of(n=2)["img"]
    with torch.no_grad():
        assert (half.model_inference(images) - full.model_inference(images)).abs().max().item() < 1e-2
    summary = half.forward_backward(batch_of(n=2, seed=1))
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    graded = {n for n, p in half.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert graded == set(half.learned_parameters())
