"""Speed of the text pass on a non-causal family (SigLIP): ours (text_tower seam, no trimming) against the
same computation written directly on open_clip's modules.

A non-causal tower lets every position attend to every other one, so the seam runs all context
positions (64 for SigLIP); this row shows that going through the seam (TextEncoder: chunking, pooled
position, mask, projection) costs nothing over writing open_clip's TextTransformer.forward by hand on
the same prompt embeddings. The features are compared too. Random weights (no download).

    python benchmarks/speed_families.py            # ViT-B-16-SigLIP's text tower size
    python benchmarks/speed_families.py --tiny     # the tests' tiny SigLIP, seconds
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import open_clip
import torch
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from coop_toolkit.trainers.clip_backbone import TextEncoder, load_clip  # noqa: E402
from coop_toolkit.trainers.text_tower import text_tower  # noqa: E402


def build(tiny):
    if tiny:
        from tools.tiny_families import save_tiny_family

        return load_clip(save_tiny_family(os.path.join(tempfile.mkdtemp(), "siglip"), "siglip"))
    return open_clip.create_model("ViT-B-16-SigLIP", pretrained=None).eval()


def direct(text, prompts):
    """open_clip's TextTransformer.forward written out, from prompt embeddings instead of ids."""
    x = prompts + text.positional_embedding
    x = text.transformer(x, attn_mask=text.attn_mask)
    x = text.ln_final(x)[:, -1]  # pool_type "last"
    return text.text_projection(x)


def timed(fns, repeats):
    """Median seconds and output of each of `fns`, run in turn within every repeat (interleaved, so that the
    load of a shared machine falls on all of them alike)."""
    times, outs = [[] for _ in fns], [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            with torch.no_grad():
                outs[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [(statistics.median(t), out) for t, out in zip(times, outs)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = build(args.tiny)
    tower = text_tower(model)
    # Random token ids: the tower pools the last position under no mask, so which tokens they are does not
    # change the work (and SigLIP's own tokenizer lives on the hub).
    ids = torch.randint(tower.token_embedding.num_embeddings, (args.classes, tower.context_length))
    prompts = tower.embed(ids).detach()
    encoder = TextEncoder(model)
    (ours_s, ours), (ref_s, ref) = timed(
        [lambda: encoder(prompts, ids), lambda: direct(model.text, prompts)], args.repeats
    )
    rows = [
        [
            "SigLIP text pass",
            args.classes,
            f"{encoder.used_length(ids)}/{tower.context_length}",
            f"{ref_s * 1000:.1f}",
            f"{ours_s * 1000:.1f}",
            f"{ref_s / ours_s:.2f}x",
            f"{(ours - ref).abs().max().item():.1e}",
        ]
    ]
    header = ["row", "prompts", "positions run", "direct ms", "ours ms", "speed-up", "max |diff|"]
    print(tabulate(rows, headers=header))


if __name__ == "__main__":
    main()
