"""The prompted towers: equal to open_clip without prompts, to a direct computation with them."""

import pytest
import torch
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from benchmarks.sequence_first_check import attention_inputs
from coop_toolkit.trainers.prompted_encoders import (
    PromptedTextEncoder,
    UnsupportedBackboneError,
    check_vision_prompts,
    prompted_image_features,
)
from tools.tiny_clip import build_tiny_clip, build_tiny_shaped

SHAPES = ["ViT-B/32", "ViT-L/14"]
TEXTS = ["a photo of a dog.", "itap of a very long named class of things.", "x"]


@pytest.fixture(scope="module", params=SHAPES)
def clip(request):
    model = build_tiny_shaped(request.param, image_size=56, layers=3, seed=1)
    return model.requires_grad_(False)


def image_batch(clip, n=2):
    size = clip.visual.image_size
    return torch.randn(n, 3, size[0], size[1], generator=torch.Generator().manual_seed(0))


def prompts_for(width, n, count, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, width, generator=g).mul_(0.1).requires_grad_() for _ in range(count)]


def test_without_prompts_the_towers_equal_open_clip(clip):
    images = image_batch(clip)
    torch.testing.assert_close(prompted_image_features(clip.visual, images), clip.visual(images))
    ids = tokenize(TEXTS)
    text = PromptedTextEncoder(clip)(clip.token_embedding(ids), ids)
    torch.testing.assert_close(text, clip.encode_text(ids), atol=1e-5, rtol=1e-5)


def direct_image(clip, images, shallow, deep):
    """Sequence-first, untrimmed, one concatenation per layer: the authors' way of writing it."""
    v = clip.visual
    x = v.conv1(images).flatten(2).permute(0, 2, 1)
    x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + v.positional_embedding
    x = torch.cat([x, shallow.expand(x.shape[0], -1, -1)], dim=1)
    x = v.ln_pre(x).permute(1, 0, 2)
    n = shallow.shape[0]
    for k, block in enumerate(v.transformer.resblocks):
        if 1 <= k <= len(deep):
            x = torch.cat([x[: x.shape[0] - n], deep[k - 1].unsqueeze(1).expand(-1, x.shape[1], -1)], dim=0)
        x = block(x.permute(1, 0, 2)).permute(1, 0, 2)
    return v.ln_post(x[0]) @ v.proj


def direct_text(clip, ids, ctx, deep):
    x = clip.token_embedding(ids)
    n = ctx.shape[0]
    x = torch.cat([x[:, :1], ctx.expand(x.shape[0], -1, -1), x[:, 1 + n :]], dim=1) + clip.positional_embedding
    x = x.permute(1, 0, 2)
    mask = torch.full((77, 77), float("-inf")).triu_(1)
    for k, block in enumerate(clip.transformer.resblocks):
        if 1 <= k <= len(deep):
            x = torch.cat([x[:1], deep[k - 1].unsqueeze(1).expand(-1, x.shape[1], -1), x[1 + n :]], dim=0)
        x = block(x.permute(1, 0, 2), attn_mask=mask).permute(1, 0, 2)
    x = clip.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ clip.text_projection


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_with_prompts_the_towers_equal_a_direct_computation(clip, depth):
    width_v, width_t = clip.visual.conv1.weight.shape[0], clip.ln_final.weight.shape[0]
    shallow, *deep_v = prompts_for(width_v, 3, depth, seed=depth)
    ctx, *deep_t = prompts_for(width_t, 2, depth, seed=10 + depth)
    images = image_batch(clip)
    got = prompted_image_features(clip.visual, images, shallow, deep_v)
    torch.testing.assert_close(got, direct_image(clip, images, shallow, deep_v), atol=1e-5, rtol=1e-5)

    ids = tokenize(TEXTS)
    emb = clip.token_embedding(ids)
    emb = torch.cat([emb[:, :1], ctx.expand(len(TEXTS), -1, -1), emb[:, 3:]], dim=1)
    got = PromptedTextEncoder(clip)(emb, ids, deep_prompts=deep_t)  # trimmed to the longest EOT
    torch.testing.assert_close(got, direct_text(clip, ids, ctx, deep_t), atol=1e-5, rtol=1e-5)
    untrimmed = PromptedTextEncoder(clip, trim=False)(emb, ids, deep_prompts=deep_t)
    torch.testing.assert_close(got, untrimmed, atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_injected_prompt_and_nothing_frozen(clip):
    width_v, width_t = clip.visual.conv1.weight.shape[0], clip.ln_final.weight.shape[0]
    layers = len(clip.visual.transformer.resblocks)
    shallow, *deep_v = prompts_for(width_v, 2, layers, seed=3)
    ctx, *deep_t = prompts_for(width_t, 2, layers, seed=4)
    ids = tokenize(TEXTS)
    emb = clip.token_embedding(ids)
    emb = torch.cat([emb[:, :1], ctx.expand(len(TEXTS), -1, -1), emb[:, 3:]], dim=1)
    image = prompted_image_features(clip.visual, image_batch(clip), shallow, deep_v)
    text = PromptedTextEncoder(clip)(emb, ids, deep_prompts=deep_t)
    (image.sum() * text.sum()).backward()
    for name, p in [("vision 0", shallow), ("text 0", ctx)] + [(f"deep {i}", p) for i, p in enumerate(deep_v + deep_t)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in clip.parameters())


def test_a_resnet_image_encoder_is_refused_for_vision_prompts():
    rn = build_tiny_clip(vision="rn")
    with pytest.raises(UnsupportedBackboneError, match="ModifiedResNet.*ViT"):
        check_vision_prompts(rn, "VPT")


def test_attention_gets_contiguous_sequence_first_input_under_grad(clip):
    """The input projection must see contiguous (L, N, D) input when gradients are recorded (else F.linear
    runs one product per position); eval without grad keeps batch-first (nn.MultiheadAttention's own
    path: its fused kernel, or a transposed input where that does not apply)."""
    images = image_batch(clip)
    shallow, *deep = prompts_for(clip.visual.conv1.weight.shape[0], 2, 2, seed=5)
    tokens = (clip.visual.image_size[0] // clip.visual.patch_size[0]) ** 2 + 1 + 2
    attentions = [block.attn for block in clip.visual.transformer.resblocks]
    with attention_inputs(attentions) as seen:
        prompted_image_features(clip.visual, images, shallow, deep).sum().backward()
    assert len(seen) == len(attentions) and all(s == ((tokens, 2, seen[0][0][2]), True) for s in seen), seen
    with attention_inputs(attentions) as seen, torch.no_grad():
        prompted_image_features(clip.visual, images, shallow, deep)
    assert all(not contiguous for _, contiguous in seen), seen
