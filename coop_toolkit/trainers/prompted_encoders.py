"""CLIP's towers run block by block over open_clip's own modules, with learned tokens put in at chosen layers.

Deep prompting (MaPLe, IVLP, VPT, PromptSRC) feeds learned tokens into the frozen transformers:

* text: the prompt embeddings already hold the first layer's context at positions 1..n (after SOS);
  at block k >= 1 the tokens at those positions are replaced by deep prompt k-1 before the block runs.
* image: n tokens are appended after the class and patch tokens (after the positional embedding,
  before ln_pre, so they get no position); at block k >= 1 the last n tokens are replaced by deep
  prompt k-1.

Blocks after the last deep prompt run on whatever the previous block left in those positions. The
towers stay frozen (no parameter here learns) but gradients flow through them to the prompts. Widths,
depths and patch counts are read from the model. The plain CoOp / CoCoOp path (clip_backbone.TextEncoder
and a no-grad image encoder) takes no prompts here; TextEncoder runs its blocks through the same
transformer_blocks.run_blocks.
"""

import torch
from open_clip.transformer import VisionTransformer
from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer

from dasslite.errors import ConfigError

from .clip_backbone import TextEncoder
from .text_tower import UnsupportedBackboneError, model_name
from .transformer_blocks import run_blocks


def _batched(prompt, x, seq_dim):
    """(n, D) prompt broadcast to x's batch, in x's layout and dtype."""
    batch = x.shape[1 - seq_dim]
    p = prompt.to(x.dtype).unsqueeze(1 - seq_dim)
    return p.expand(-1, batch, -1) if seq_dim == 0 else p.expand(batch, -1, -1)


def replace_at(x, prompt, start, seq_dim):
    """x with positions start..start+n (n = len(prompt)) replaced by the prompt tokens."""
    n, length = prompt.shape[0], x.shape[seq_dim]
    head, tail = x.narrow(seq_dim, 0, start), x.narrow(seq_dim, start + n, length - start - n)
    return torch.cat([head, _batched(prompt, x, seq_dim), tail], dim=seq_dim)


def deep_injector(deep_prompts, start):
    """inject() for run_blocks: block k (k >= 1) gets deep_prompts[k-1] at `start` (None: at the end)."""
    deep_prompts = list(deep_prompts)

    def inject(k, x, seq_dim):
        if not 1 <= k <= len(deep_prompts) or deep_prompts[k - 1] is None:
            return x
        prompt = deep_prompts[k - 1]
        at = x.shape[seq_dim] - prompt.shape[0] if start is None else start
        return replace_at(x, prompt, at, seq_dim)

    return inject


def check_depth(depth, transformer, key):
    """`transformer`: open_clip's Transformer, or a tower's blocks (vision_blocks)."""
    layers = len(getattr(transformer, "resblocks", transformer))
    if not 0 <= depth <= layers:
        raise ConfigError(f"{key} is {depth}; this backbone's tower has {layers} layers, so use 0..{layers}")


class PromptedTextEncoder(TextEncoder):
    """TextEncoder whose blocks 1..len(deep_prompts) get deep_prompts[k-1] at the context's positions
    lead..lead+n (right after the leading special tokens: 1..n for CLIP, 0..n-1 for SigLIP).

    Trimming stays exact: the deep prompts replace positions before every pooled position, and the
    causal mask of the trimmed length is the full mask's top-left corner.
    """

    def run_transformer(self, x, mask, deep_prompts=()):
        return run_blocks(self.transformer, x, mask, deep_injector(deep_prompts, start=self.tower.lead))


def check_vision_prompts(clip_model, method):
    """Refuse an image encoder whose blocks the prompts cannot reach, naming the model and why."""
    why = vision_prompt_refusal(clip_model.visual)
    if why:
        raise UnsupportedBackboneError(
            f"{method} puts learned tokens into the image encoder's transformer, but the image encoder of "
            f"{model_name(clip_model)} is {why}. Use a ViT backbone (OpenAI's ViT-B/16, SigLIP, ...), or on this "
            "one a method that reads only image features (CoOp, CoCoOp, KgCoOp, ProGrad, language-only IVLP)."
        )


def vision_prompt_refusal(visual):
    """None where prompts can reach the image tower's blocks, else why not (the README table quotes it).

    Reachable: open_clip's class-token VisionTransformer (OpenAI, MetaCLIP, DFN, ...) and a timm
    VisionTransformer tower (SigLIP, SigLIP 2), whose blocks take the token sequence alone.
    """
    trunk = getattr(visual, "trunk", None)  # open_clip's TimmModel wraps a timm model
    if isinstance(trunk, TimmVisionTransformer):
        return None
    if trunk is not None and hasattr(trunk, "rope"):
        return (
            f"a timm {type(trunk).__name__} with rotary position embeddings, which rotate every token by its "
            "patch position; appended prompt tokens have none"
        )
    if trunk is not None or not isinstance(visual, VisionTransformer):
        kind = type(trunk if trunk is not None else visual).__name__
        return f"a {'timm ' if trunk is not None else ''}{kind}, not a transformer over a token sequence"
    if visual.attn_pool is not None or visual.pool_type != "tok":
        return f'a ViT that pools with "{visual.attn_pool_type or visual.pool_type}", not its class token'
    return None


def vision_width(visual):
    trunk = getattr(visual, "trunk", None)
    return trunk.embed_dim if trunk is not None else visual.conv1.weight.shape[0]


def vision_blocks(visual):
    """The image tower's transformer blocks (open_clip's resblocks, or a timm trunk's blocks)."""
    trunk = getattr(visual, "trunk", None)
    return trunk.blocks if trunk is not None else visual.transformer.resblocks


def prompted_image_features(visual, image, shallow=None, deep_prompts=()):
    """open_clip VisionTransformer.forward with `shallow` (n, width) appended before ln_pre and the last
    n tokens replaced by deep_prompts[k-1] at block k. Without prompts it is visual(image)."""
    return image_tower_blocks(visual, image, shallow, inject=deep_injector(deep_prompts, start=None))


def image_tower_blocks(visual, image, shallow=None, inject=None, residual=None):
    """The image tower (open_clip's ViT or a timm ViT trunk) run block by block: `shallow` (n, width)
    appended before ln_pre (norm_pre), then run_blocks' `inject` and `residual` hooks at each block
    (block 0's inject receives ln_pre's output)."""
    if getattr(visual, "trunk", None) is not None:
        return _prompted_timm_vit(visual, image, shallow, inject, residual)
    x = visual.conv1(image.to(visual.conv1.weight.dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.patch_dropout(x)
    if shallow is not None:
        x = torch.cat([x, _batched(shallow, x, 1)], dim=1)
    x = visual.ln_pre(x)
    x = run_blocks(visual.transformer, x, inject=inject, residual=residual)
    pooled = visual.ln_post(x[:, 0])  # class-token pooling (check_vision_prompts); ln is per token
    return pooled @ visual.proj if visual.proj is not None else pooled


def _prompted_timm_vit(visual, image, shallow, inject, residual):
    """open_clip's TimmModel over a timm VisionTransformer (trunk, then head), with `shallow` appended
    after the position embedding (before norm_pre) and inject / residual at each block (as run_blocks'; a
    residual's block is timm's, norm1 in place of ln_1). The prompt tokens are dropped before the trunk's
    pooling (class token, average or attention pool), so, as with a class-token readout, they act only
    through attention in the blocks."""
    trunk = visual.trunk
    x = trunk.patch_embed(image.to(trunk.patch_embed.proj.weight.dtype))
    x = trunk.patch_drop(trunk._pos_embed(x))
    if shallow is not None:
        x = torch.cat([x, _batched(shallow, x, 1)], dim=1)
    x = trunk.norm_pre(x)
    for k, block in enumerate(trunk.blocks):  # batch-first; the blocks take the sequence alone
        x = inject(k, x, 1) if inject is not None else x
        term = residual(k, block, x) if residual is not None else None
        x = block(x) if term is None else block(x) + term
    x = trunk.norm(x)
    if shallow is not None:
        x = x[:, : x.shape[1] - shallow.shape[0]]
    return visual.head(trunk.forward_head(x))
