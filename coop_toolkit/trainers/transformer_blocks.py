"""open_clip's transformer run block by block, sequence-first wherever attention takes its general path.

Both the plain text encoder (clip_backbone.TextEncoder: CoOp, CoCoOp, KgCoOp, ProGrad) and the
prompted towers (prompted_encoders) run their blocks through `run_blocks`. No forward changes a
module: CLIP's modules are shared by every thread that calls the model, so the sequence-first layout
is chosen per call, not set on the attention modules.
"""

import torch
import torch.nn as nn
from open_clip.transformer import ResidualAttentionBlock


def run_blocks(transformer, x, mask=None, inject=None, residual=None):
    """open_clip's transformer over batch-first x (N, L, D), one block at a time.

    `inject(k, x, seq_dim)` returns the sequence block k receives (seq_dim: the sequence axis of x
    in the layout the blocks run in). `residual(k, block, x)` returns None or a term added to block k's
    output, computed from the sequence x it received (an adapter beside the block: MMA). Where attention
    takes its general path the blocks run sequence-first (see `runs_sequence_first`).
    """
    own_layout = runs_sequence_first(transformer, mask)
    batch_first = getattr(transformer, "batch_first", True) and not own_layout
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    seq_dim = 1 if batch_first else 0
    for k, block in enumerate(transformer.resblocks):
        if inject is not None:
            x = inject(k, x, seq_dim)
        out = block_sequence_first(block, x, mask) if own_layout else block(x, attn_mask=mask)
        term = residual(k, block, x) if residual is not None else None
        x = out if term is None else out + term
    return x if batch_first else x.transpose(0, 1)


def runs_sequence_first(transformer, mask):
    """Whether run_blocks runs the blocks of this batch-first transformer on (L, N, D) input, as
    OpenAI's CLIP does (the layout the authors' code runs).

    A batch-first nn.MultiheadAttention transposes its input to (L, N, D) before the input projection.
    On its general path (gradients recorded, a mask, training) F.linear then gets a non-contiguous
    input and a frozen weight, and multiplies each of the L positions separately against the whole
    weight (a batched product) instead of one matrix product, about twice as slow: at ViT-B/16 sizes
    on a CPU a training step took 1.1-1.25x longer (benchmarks/README.md). Sequence-first input
    reaches it contiguous; the results are bit-identical. Eval without gradients keeps batch-first
    and nn.MultiheadAttention's fused path. Blocks other than open_clip's plain one run as built.
    """
    return (
        _general_path(transformer, mask)
        and getattr(transformer, "batch_first", True)
        and all(_plain_block(block) for block in transformer.resblocks)
    )


def _general_path(transformer, mask):
    """Whether nn.MultiheadAttention takes its general (not the fused inference) path.

    A floating-point mask (the text tower's causal mask) always keeps it off the fused path.
    """
    return torch.is_grad_enabled() or transformer.training or mask is not None


def _plain_block(block):
    """open_clip's ResidualAttentionBlock over a self-attention nn.MultiheadAttention, without hooks
    (block_sequence_first calls its pieces, which would skip them)."""
    attn = getattr(block, "attn", None)
    return (
        type(block) is ResidualAttentionBlock
        and not hasattr(block, "ln_1_kv")
        and type(attn) is nn.MultiheadAttention
        and attn.batch_first
        and attn._qkv_same_embed_dim
        and not any(m._forward_hooks or m._forward_pre_hooks for m in (block, attn))
    )


def block_sequence_first(block, x, mask=None):
    """ResidualAttentionBlock.forward(x, attn_mask=mask) for sequence-first x (L, N, D)."""
    x = x + block.ls_1(attention_sequence_first(block.attn, block.ln_1(x), mask))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def attention_sequence_first(attn, x, mask=None):
    """Self-attention of the batch-first nn.MultiheadAttention `attn` over (L, N, D) x: what its forward
    computes when built with batch_first=False (its general path), from its own parameters and mode."""
    mask = mask.to(x.dtype) if mask is not None else None  # as ResidualAttentionBlock.attention
    return torch.nn.functional.multi_head_attention_forward(
        x,
        x,
        x,
        attn.embed_dim,
        attn.num_heads,
        attn.in_proj_weight,
        attn.in_proj_bias,
        attn.bias_k,
        attn.bias_v,
        attn.add_zero_attn,
        attn.dropout,
        attn.out_proj.weight,
        attn.out_proj.bias,
        training=attn.training,
        need_weights=False,
        attn_mask=mask,
    )[0]
