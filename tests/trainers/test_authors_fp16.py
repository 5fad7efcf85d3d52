"""The deep prompts enter the towers rounded to fp16 whatever PREC says, as the authors' clip/model.py does.

Their ResidualAttentionBlock_IVLP / _MaPLe call `.half()` on each tower's deep prompt and their image
towers on the first image prompt (VPT, or MaPLe's projected context) before concatenating: with CLIP in
fp32 the values are fp16-rounded and so are the gradients coming back through the cast. The first text
context (the prompt learner's ctx) is not rounded.
"""

import pytest
import torch

from benchmarks.speed_deep import authors_logits, build
from coop_toolkit.trainers.deep_prompt import DeepPromptCLIP
from coop_toolkit.trainers.ivlp import IVLP
from coop_toolkit.trainers.maple import MaPLe
from coop_toolkit.trainers.prompted_encoders import prompted_image_features
from coop_toolkit.trainers.promptsrc import PromptSRC
from coop_toolkit.trainers.vpt import VPT
from tests.trainers import test_deep_prompt_init
from tests.trainers.helpers import CLASSNAMES, clip_fp32

METHODS = (IVLP, PromptSRC, MaPLe, VPT)

clip_path = test_deep_prompt_init.clip_path  # the tiny ViT-B/32 fixture


def images(n=2):
    return torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def model_of(method, clip_path):
    torch.manual_seed(1)
    return build(method)(clip_fp32(clip_path), CLASSNAMES)


def unrounded_logits(model, image):
    """The model's forward with its prompts put in unrounded (what the toolkit did before)."""
    prompts = model.prompts()
    text = model.text_encoder(prompts.text(), model.prompt_learner.token_ids, deep_prompts=prompts.text_deep)
    image_f = prompted_image_features(model.image_encoder, image, prompts.vision_first, prompts.vision_deep)
    image_f, text = image_f / image_f.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
    return (model.logit_scale.exp() * image_f) @ text.t()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_fp32_logits_and_gradients_are_the_authors_with_fp16_prompts(method, clip_path):
    model, image = model_of(method, clip_path), images()
    with torch.no_grad():
        ours = model(image)
        theirs = authors_logits(model, image)[0]  # sequence-first, `.half()` on every tower prompt
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    if method is not VPT:  # VPT reads fixed text features; the check below needs the prompted text tower
        with torch.no_grad():
            plain = unrounded_logits(model, image)
        assert (plain - ours).abs().max() > 5e-5  # the rounding is visible at this size: the test can fail

    # The gradients come back through the fp16 cast too.
    assert isinstance(model, DeepPromptCLIP)
    model(image).logsumexp(dim=1).sum().backward()
    tower = {n: p for n, p in model.learned_parameters().items() if n.startswith(("vision_prompts", "text_prompts"))}
    assert tower or method is MaPLe  # MaPLe's tower prompts are computed from its learner (checked below)
    for name, p in tower.items():
        assert p.dtype == torch.float32 and p.grad is not None, name
        assert torch.equal(p.grad, p.grad.half().float()), f"{name}: gradient not through the fp16 cast"
    # The first text context is not rounded by the authors: its gradient is a plain fp32 one.
    if hasattr(model, "prompt_learner"):
        ctx = model.prompt_learner.ctx.grad
        assert not torch.equal(ctx, ctx.half().float())
