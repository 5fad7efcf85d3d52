"""open_clip's transformer run block by block, sequence-first wherever attention takes its general path.

Both the plain text encoder (clip_backbone.TextEncoder: CoOp, CoCoOp, KgCoOp, ProGrad) and the
prompted towers (prompted_encoders) run their blocks through `run_blocks`.
"""

import contextlib

import torch
import torch.nn as nn


def run_blocks(transformer, x, mask=None, inject=None):
    """open_clip's transformer over batch-first x (N, L, D), one block at a time.

    `inject(k, x, seq_dim)` returns the sequence block k receives (seq_dim: the sequence axis of x
    in the transformer's own layout). Where attention takes its general path the blocks run
    sequence-first (see `sequence_first`).
    """
    with sequence_first(transformer, general_path=_general_path(transformer, mask)) as batch_first:
        if not batch_first:
            x = x.transpose(0, 1).contiguous()
        seq_dim = 1 if batch_first else 0
        for k, block in enumerate(transformer.resblocks):
            if inject is not None:
                x = inject(k, x, seq_dim)
            x = block(x, attn_mask=mask)
    return x if batch_first else x.transpose(0, 1)


def _general_path(transformer, mask):
    """Whether nn.MultiheadAttention takes its general (not the fused inference) path.

    A floating-point mask (the text tower's causal mask) always keeps it off the fused path.
    """
    return torch.is_grad_enabled() or transformer.training or mask is not None


@contextlib.contextmanager
def sequence_first(transformer, general_path=True):
    """Within the block, the transformer's attention layers take (L, N, D) input, as in OpenAI's CLIP
    (the layout the authors' code runs); yields whether the transformer is still batch-first.

    A batch-first nn.MultiheadAttention transposes its input to (L, N, D) before the input projection.
    On its general path (gradients recorded, a mask, training) F.linear then gets a non-contiguous
    input and a frozen weight, and multiplies each of the L positions separately against the whole
    weight (a batched product) instead of one matrix product, about twice as slow: at ViT-B/16 sizes
    on a CPU a training step took 1.1-1.25x longer (benchmarks/README.md). Sequence-first input
    reaches it contiguous; the results are bit-identical. Eval without gradients (`general_path`
    False) keeps batch-first and nn.MultiheadAttention's fused path.
    """
    attentions = [getattr(block, "attn", None) for block in transformer.resblocks]
    switch = (
        general_path
        and getattr(transformer, "batch_first", True)
        and all(isinstance(a, nn.MultiheadAttention) and a.batch_first for a in attentions)
    )
    if not switch:
        yield getattr(transformer, "batch_first", True)
        return
    for attention in attentions:
        attention.batch_first = False
    try:
        yield False
    finally:
        for attention in attentions:
            attention.batch_first = True
