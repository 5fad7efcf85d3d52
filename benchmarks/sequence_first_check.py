"""Bit-identity of the sequence-first text blocks at ViT-B/16 sizes (random weights, no download).

CoOp and CoCoOp are built twice from the same seed: once as they run (TextEncoder's blocks
sequence-first on attention's general path) and once with the switch off (batch-first, as open_clip
builds it). Their train- and eval-mode logits and their learned values after 2 SGD steps must be
equal bit for bit (torch.equal). tests/trainers/test_clip_backbone.py runs `train_two_steps` on a
tiny CLIP.

    python benchmarks/sequence_first_check.py
"""

import contextlib
import os
import sys
from unittest import mock

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.speed import CLASSNAMES, build_clip, learn_only, method_cfg  # noqa: E402
from coop_toolkit.trainers import cocoop, coop, transformer_blocks  # noqa: E402


@contextlib.contextmanager
def attention_inputs(attentions):
    """Yields a list that gets (query shape, query contiguous) at every F.multi_head_attention_forward
    call of these nn.MultiheadAttention modules: what their input projection multiplies. A batch-first
    module hands it a transposed (non-contiguous) query; none is recorded on the fused inference path."""
    weights = {id(attention.in_proj_weight) for attention in attentions}
    original, seen = F.multi_head_attention_forward, []

    def recording(query, key, value, embed_dim, num_heads, in_proj_weight, *args, **kwargs):
        if id(in_proj_weight) in weights:
            seen.append((tuple(query.shape), query.is_contiguous()))
        return original(query, key, value, embed_dim, num_heads, in_proj_weight, *args, **kwargs)

    with mock.patch.object(F, "multi_head_attention_forward", recording):
        yield seen


def train_two_steps(build, images, labels):
    """Train- and eval-mode logits and the learned values after 2 SGD steps of the model `build()` returns
    (built under seed 0, its learned parameters requiring grad), and the set of "input contiguous" its
    first text attention's input projection saw."""
    torch.manual_seed(0)
    model = build()
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    with attention_inputs([model.text_encoder.transformer.resblocks[0].attn]) as seen:
        model.train()
        out = [("train logits", model(images).detach())]
        for _ in range(2):
            optim.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optim.step()
        model.eval()
        with torch.no_grad():
            out.append(("eval logits", model(images)))
    learned = [(f"{n} after 2 steps", p.detach().clone()) for n, p in model.prompt_learner.named_parameters()]
    return out + learned, {contiguous for _, contiguous in seen}


def run(module, clip_model, images, labels):
    out, layouts = train_two_steps(
        lambda: learn_only(module.CustomCLIP(method_cfg(), CLASSNAMES[:5], clip_model)), images, labels
    )
    print(f"  text attention's input projection got contiguous input: {sorted(layouts)}")
    return out


def main():
    torch.manual_seed(0)
    clip_model = build_clip(tiny=False, prec="fp32", device="cpu").requires_grad_(False)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3])
    ok = True
    for name, module in (("CoOp", coop), ("CoCoOp", cocoop)):
        switched = run(module, clip_model, images, labels)
        with mock.patch.object(transformer_blocks, "_general_path", lambda transformer, mask: False):
            batch_first = run(module, clip_model, images, labels)
        for (label, a), (_, b) in zip(switched, batch_first):
            equal = torch.equal(a, b)
            ok &= equal
            print(f"{name:7s} {label:38s} {str(tuple(a.shape)):12s} equal={equal} max|diff|={(a - b).abs().max():.1e}")
    print("bit-identical" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
