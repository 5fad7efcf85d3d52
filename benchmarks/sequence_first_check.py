"""Bit-identity of the sequence-first text blocks at ViT-B/16 sizes (random weights, no download).

CoOp and CoCoOp are built twice from the same seed: once as they run (TextEncoder's blocks
sequence-first on attention's general path) and once with the switch off (batch-first, as open_clip
builds it). Their train- and eval-mode logits and their learned values after 2 SGD steps must be
equal bit for bit (torch.equal). tests/trainers/test_clip_backbone.py runs `train_two_steps` on a
tiny CLIP.

    python benchmarks/sequence_first_check.py
"""

import os
import sys
from unittest import mock

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.speed import CLASSNAMES, build_clip, learn_only, method_cfg  # noqa: E402
from coop_toolkit.trainers import cocoop, coop, transformer_blocks  # noqa: E402


def train_two_steps(build, images, labels):
    """Train- and eval-mode logits and the learned values after 2 SGD steps of the model `build()` returns
    (built under seed 0, its learned parameters requiring grad), and the set of (batch_first, input
    contiguous) its first text attention saw."""
    torch.manual_seed(0)
    model = build()
    attn = model.text_encoder.transformer.resblocks[0].attn
    layouts = set()
    hook = attn.register_forward_pre_hook(lambda m, args: layouts.add((m.batch_first, args[0].is_contiguous())))
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    out = [("train logits", model(images).detach())]
    for _ in range(2):
        optim.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        out.append(("eval logits", model(images)))
    hook.remove()
    return out + [
        (f"{n} after 2 steps", p.detach().clone()) for n, p in model.prompt_learner.named_parameters()
    ], layouts


def run(module, clip_model, images, labels):
    out, layouts = train_two_steps(
        lambda: learn_only(module.CustomCLIP(method_cfg(), CLASSNAMES[:5], clip_model)), images, labels
    )
    print(f"  text attention (batch_first, input contiguous): {sorted(layouts)}")
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
