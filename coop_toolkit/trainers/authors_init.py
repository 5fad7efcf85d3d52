"""The random draws the MaPLe / PromptSRC authors' code makes while it builds CLIP, replayed.

Their vision and text prompts of IVLP, VPT and PromptSRC are parameters of their modified CLIP
modules, drawn N(0, 0.02^2) in the middle of CLIP's construction (the pretrained weights then replace
everything else), and MaPLe's prompt learner draws right after it. So the prompts a seed gives depend
on every draw of that construction. Here the same torch modules are built with the same shapes, in
the same order, on the global generator, and the prompts are drawn where theirs are: the same seed
starts from the same prompts, and the generator is left where theirs is for what comes next.

Order (their CLIP.__init__, ViT image tower): conv1; the image tower's first prompt (if any); class
and positional embeddings; per image block attention, c_fc, c_proj, then that block's deep prompt
(blocks 1..depth-1); proj; per text block the same with the text deep prompts; token embedding;
then initialize_parameters' normals over the token and positional embeddings, the text blocks and
text_projection.
"""

import torch
import torch.nn as nn
from open_clip.transformer import VisionTransformer


def _normal(shape, std):
    return nn.init.normal_(torch.empty(shape), std=std)


def _block(width, heads):
    nn.MultiheadAttention(width, heads)
    nn.Linear(width, 4 * width)
    nn.Linear(4 * width, width)


def _tower(resblocks, width, n_ctx, depth):
    """Blocks' default inits; returns the deep prompts of blocks 1..depth-1 drawn after each block."""
    deep = []
    for k, block in enumerate(resblocks):
        _block(width, block.attn.num_heads)
        if k != 0 and depth > k:
            deep.append(_normal((n_ctx, width), 0.02))
    return deep


def is_openai_vit(clip_model):
    """Whether `clip_model` is laid out as OpenAI's ViT CLIP, the one whose construction is replayed."""
    return isinstance(clip_model.visual, VisionTransformer) and not hasattr(clip_model, "text")


def replay_clip_construction(clip_model, vision=(0, 0), text=(0, 0)):
    """Replay the construction of the authors' CLIP shaped like `clip_model` (an open_clip ViT CLIP).

    vision / text: (n_ctx, depth) of the prompts their CLIP creates (depth 0: none). Returns
    (vision_first, vision_deep, text_deep): the image tower's appended prompt (None without vision
    prompts) and the deep prompts of blocks 1..depth-1 of each tower, as drawn (fp32).
    """
    visual = clip_model.visual
    width = visual.conv1.weight.shape[0]
    patch = visual.conv1.weight.shape[-1]
    n_vis, depth_vis = vision
    nn.Conv2d(3, width, patch, patch, bias=False)
    first = _normal((n_vis, width), 0.02) if depth_vis != 0 else None
    torch.randn(width)
    torch.randn(visual.positional_embedding.shape)
    vision_deep = _tower(visual.transformer.resblocks, width, n_vis, depth_vis)
    torch.randn(visual.proj.shape)

    text_width = clip_model.ln_final.weight.shape[0]
    text_layers = len(clip_model.transformer.resblocks)
    text_deep = _tower(clip_model.transformer.resblocks, text_width, text[0], text[1])
    nn.Embedding(*clip_model.token_embedding.weight.shape)
    _normal(clip_model.token_embedding.weight.shape, 0.02)
    _normal(clip_model.positional_embedding.shape, 0.01)
    proj_std = text_width**-0.5 * (2 * text_layers) ** -0.5
    for _ in range(text_layers):
        _normal((3 * text_width, text_width), text_width**-0.5)
        _normal((text_width, text_width), proj_std)
        _normal((4 * text_width, text_width), (2 * text_width) ** -0.5)
        _normal((text_width, 4 * text_width), proj_std)
    _normal(clip_model.text_projection.shape, text_width**-0.5)
    return first, vision_deep, text_deep


def keeping_the_generator(build):
    """build() with torch's global generator put back where it was.

    The authors build their CLIP from the generator as it is, and replay_clip_construction repeats
    their draws; building ours (open_clip draws too) must therefore not move the generator.
    """
    state = torch.get_rng_state()
    try:
        return build()
    finally:
        torch.set_rng_state(state)
