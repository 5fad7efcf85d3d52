"""The words nearest to each learned context vector (the CoOp paper's prompt interpretation).

    python interpret_prompt.py output/.../prompt_learner/model.pth.tar-50 5 [--backbone ViT-B/16]

Reads `state_dict["ctx"]` from a prompt-learner checkpoint (loaded by the engine's loader, with
weights_only=True and its allowlist: dasslite/engine/checkpoint.py), measures the Euclidean distance
from each context vector to every row of CLIP's token-embedding table, and prints, per context
position, the top-k tokens (as CLIP's BPE vocabulary spells them, "</w>" marking a word end) and their
distances. Class-specific contexts (CSC, shape (n_cls, M, width)) are shown class by class, or for one
class with --class-index.

Differences from the original: the backbone is the one recorded in the run.json of the run the
checkpoint belongs to, or --backbone (it was always RN50, still the default outside a run folder), CSC
contexts work (they raised NotImplementedError), and distances are computed exactly (no matrix-product
shortcut), so a context vector equal to a token's embedding is at 0.
"""

import argparse
import os
import sys

from dasslite.cli import ArgumentParser, UsageError, run_cli
from dasslite.errors import UserError

# torch, open_clip and the toolkit are imported where used, so that --help answers at once.


class NoContextError(UserError, KeyError):
    """The checkpoint holds no learned context `ctx`."""


def read_ctx(path):
    """The learned context tensor (M, width) or (n_cls, M, width) of a prompt-learner checkpoint."""
    from dasslite.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    state_dict = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    if "ctx" in state_dict:
        return state_dict["ctx"]
    candidates = [k for k in state_dict if k.endswith(".ctx")]  # a whole model's state dict
    if len(candidates) == 1:
        return state_dict[candidates[0]]
    keys = ", ".join(list(state_dict)[:10]) or "none"
    raise NoContextError(
        f'"{path}" holds no learned context "ctx" (keys: {keys}). Pass a prompt learner\'s '
        f"checkpoint, e.g. OUTPUT_DIR/prompt_learner/model.pth.tar-<epoch>."
    )


def nearest_tokens(ctx, token_embedding, topk):
    """(distances, token ids), each (M, topk), ascending: the k nearest table rows to each ctx row."""
    import torch

    if ctx.shape[-1] != token_embedding.shape[1]:
        raise UsageError(
            f"The context vectors have width {ctx.shape[-1]} but the backbone's token embedding "
            f"has width {token_embedding.shape[1]}; pass the backbone the prompt was learned with "
            f"(--backbone, e.g. --backbone ViT-B/16)."
        )
    if not 1 <= topk <= token_embedding.shape[0]:
        raise UsageError(f"TOPK must be between 1 and the vocabulary size {token_embedding.shape[0]}; got {topk}")
    distance = torch.cdist(ctx.float(), token_embedding.float(), compute_mode="donot_use_mm_for_euclid_dist")
    return torch.topk(distance, topk, dim=1, largest=False, sorted=True)


def interpret(ctx, token_embedding, topk, decoder):
    """Per context position, [(word, distance)] nearest first; a 3-D (CSC) ctx gives one such list per class."""
    if ctx.dim() == 3:
        return [interpret(c, token_embedding, topk, decoder) for c in ctx]
    if ctx.dim() != 2:
        raise UsageError(f"ctx must be (M, width) or (n_cls, M, width); got shape {tuple(ctx.shape)}")
    dists, idxs = nearest_tokens(ctx, token_embedding, topk)
    return [
        [(decoder.get(i, f"<id {i}>"), d) for i, d in zip(row_i.tolist(), row_d.tolist())]
        for row_i, row_d in zip(idxs, dists)
    ]


def format_position(m, pairs):
    """The original's line: `<m>: [words] [distances]`."""
    words = [w for w, _ in pairs]
    dists = [f"{d:.4f}" for _, d in pairs]
    return f"{m + 1}: {words} {dists}"


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fpath", type=str, help="path to the learned prompt (a prompt_learner checkpoint)")
    p.add_argument("topk", type=int, help="select top-k similar words")
    p.add_argument(
        "--backbone",
        default=None,
        help="CLIP the prompt was learned with: an OpenAI name, an OpenAI-layout file or an open_clip "
        "model:tag (default: the one in the run.json of the run the checkpoint belongs to, else RN50)",
    )
    p.add_argument("--class-index", type=int, default=None, help="class-specific context: show only this class")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    if args.topk < 1:
        raise UsageError(f"TOPK must be at least 1 (the words shown per context vector); got {args.topk}")
    return args


def vocabulary(tokenizer):
    """{token id: token text} of the model's tokenizer (CLIP's BPE, or a Hugging Face tokenizer's)."""
    from open_clip.tokenizer import SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer):
        return tokenizer.decoder
    return {i: t for t, i in tokenizer.tokenizer.get_vocab().items()}


def recorded_backbone(fpath):
    """The backbone of the run holding `fpath` (RUN/<model>/model.pth.tar-N, run.json in RUN), or None.

    A prompt only means something next to the token embeddings it was learned with, so the run's own
    backbone beats the original's fixed RN50 (which offline would also try a download)."""
    from coop_toolkit import run_record as rr

    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(fpath)))
    if not os.path.isfile(os.path.join(run_dir, rr.RUN_FILE)):
        return None
    return rr.resolve_backbone(rr.read_run_record(run_dir)["backbone"]), os.path.join(run_dir, rr.RUN_FILE)


def main(argv=None):
    args = parse_args(argv)
    from coop_toolkit.trainers.clip_backbone import load_clip
    from coop_toolkit.trainers.text_tower import text_tower

    ctx = read_ctx(args.fpath).detach()
    backbone = args.backbone
    if backbone is None:
        recorded = recorded_backbone(args.fpath)
        backbone = recorded[0] if recorded else "RN50"
        source = f"from {recorded[1]}" if recorded else "no run.json beside it: the original default"
        print(f"Backbone: {backbone} ({source})")
    print(f"Return the top-{args.topk} matched words")
    clip_model = load_clip(backbone, "fp32")
    tower = text_tower(clip_model)  # any open_clip family: its own vocabulary
    token_embedding = tower.token_embedding.weight.detach()
    print(f"Size of token embedding: {tuple(token_embedding.shape)}")
    print(f"Size of context: {tuple(ctx.shape)}")
    decoder = vocabulary(tower.tokenizer)
    if ctx.dim() == 3:
        classes = range(ctx.shape[0])
        if args.class_index is not None:
            if not 0 <= args.class_index < ctx.shape[0]:
                raise UsageError(f"--class-index must be in 0..{ctx.shape[0] - 1}; got {args.class_index}")
            classes = [args.class_index]
        for c in classes:
            print(f"Class {c}:")
            for m, pairs in enumerate(interpret(ctx[c], token_embedding, args.topk, decoder)):
                print("  " + format_position(m, pairs))
    else:
        if args.class_index is not None:
            print("Note: --class-index applies to class-specific contexts only; this context is shared")
        for m, pairs in enumerate(interpret(ctx, token_embedding, args.topk, decoder)):
            print(format_position(m, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
