"""Speed and memory of CoOp and CoCoOp: the reference computation against ours, in one run.

(a) reference: the original code's computation, written plainly: CoCoOp runs the text encoder once
    per image over all classes at the full 77 tokens; CoOp encodes all class prompts at 77 tokens at
    every training step and at every evaluation batch.
(b) ours: trimmed text sequences, CoCoOp's prompts of the whole batch in one chunked pass, CoOp's class
    features computed once per evaluation.

Both use the same modules and weights (random ViT-B/16-sized CLIP by default, no download), so
their logits are compared too. Memory: peak allocated bytes on CUDA; on CPU the bytes of tensors
autograd saves for backward in a training step (the part that grows with batch and classes).

    python benchmarks/speed.py               # ViT-B/16 sizes; slow on CPU (tens of minutes)
    python benchmarks/speed.py --tiny        # a tiny CLIP, seconds
    python benchmarks/speed.py --device cuda --batches 1 8 32 --classes 5 50 100
"""

import argparse
import contextlib
import os
import sys
import time

import torch
import torch.nn.functional as F
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from coop_toolkit import trainers  # noqa: E402
from coop_toolkit.trainers import cocoop, coop  # noqa: E402
from coop_toolkit.trainers.clip_backbone import TextEncoder  # noqa: E402
from dasslite.config import get_cfg_default  # noqa: E402

CLASSNAMES = [f"class number {i}" for i in range(1000)]


def build_clip(tiny, device):
    if tiny:
        from tools.tiny_clip import build_tiny_clip

        return build_tiny_clip().to(device).eval()
    import open_clip

    return open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True).to(device).eval()


def build_model(method, clip_model, n_cls, device):
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    cfg.TRAINER.COOP.CTX_INIT = cfg.TRAINER.COCOOP.CTX_INIT = "a photo of a"
    module = coop if method == "CoOp" else cocoop
    model = module.CustomCLIP(cfg, CLASSNAMES[:n_cls], clip_model).to(device)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("prompt_learner."))
    return model


def full_length_encoder(model):
    """The same text encoder without trimming (all 77 positions), as the original runs it."""
    enc = TextEncoder.__new__(TextEncoder)
    enc.__dict__.update(model.text_encoder.__dict__)
    enc.trim = False
    return enc


def reference_forward(method, model, images):
    """The original code's computation (docs/reference-behaviour.md, "CoOp and CoCoOp computations")."""
    enc = full_length_encoder(model)
    feats = model.image_encoder(images.to(enc.dtype)).float()
    feats = feats / feats.norm(dim=-1, keepdim=True)
    pl = model.prompt_learner
    if method == "CoOp":
        text = enc(pl(), pl.token_ids).float()
        text = text / text.norm(dim=-1, keepdim=True)
        return model.logit_scale.exp() * feats @ text.t()
    rows = []
    for f in feats:  # one text-encoder pass per image
        ctx = (pl.ctx + pl.meta_net(f.unsqueeze(0))).unsqueeze(0).expand(pl.n_cls, -1, -1)
        text = enc(torch.cat([pl.token_prefix, ctx, pl.token_suffix], dim=1), pl.token_ids).float()
        text = text / text.norm(dim=-1, keepdim=True)
        rows.append(model.logit_scale.exp() * f @ text.t())
    return torch.stack(rows)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def saved_bytes_counter(counter, model):
    """Adds to counter[0] the bytes of distinct activation storages autograd saves (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = set()

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            counter[0] += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def train_step(forward, model, images, labels, optim, device):
    """Seconds per training image and activation/peak memory (bytes) of one step."""
    counter = [0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    with saved_bytes_counter(counter, model):
        loss = F.cross_entropy(forward(images), labels)
    optim.zero_grad()
    loss.backward()
    optim.step()
    sync(device)
    seconds = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else counter[0]
    return seconds / len(images), memory


def eval_rate(forward, images, device, batches=3):
    with torch.no_grad():
        forward(images)  # warm-up (and fills CoOp's class-feature cache, as in a real evaluation)
        sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            forward(images)
        sync(device)
    return batches * len(images) / (time.perf_counter() - start)


def measure(method, clip_model, n_cls, batch, device, repeats):
    model = build_model(method, clip_model, n_cls, device)
    optim = torch.optim.SGD(model.prompt_learner.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, 224, 224, device=device)
    labels = torch.randint(0, n_cls, (batch,), device=device)
    impls = {"reference": lambda x: reference_forward(method, model, x), "ours": model}
    with torch.no_grad():
        model.eval()
        diff = (impls["reference"](images) - impls["ours"](images)).abs().max().item()
    row = {"method": method, "classes": n_cls, "batch": batch, "max |logit diff|": f"{diff:.1e}"}
    for name, forward in impls.items():
        model.train()
        train_step(forward, model, images, labels, optim, device)  # warm-up
        times, mem = zip(*(train_step(forward, model, images, labels, optim, device) for _ in range(repeats)))
        model.eval()
        row[f"{name} s/img"] = min(times)
        row[f"{name} eval img/s"] = eval_rate(forward, images, device)
        row[f"{name} MB"] = max(mem) / 2**20
    row["train speed-up"] = row["reference s/img"] / row["ours s/img"]
    row["eval speed-up"] = row["ours eval img/s"] / row["reference eval img/s"]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny CLIP instead of ViT-B/16 sizes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="+", default=["CoCoOp", "CoOp"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--classes", nargs="+", type=int, default=[5, 50, 100])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    clip_model = build_clip(args.tiny, device)
    rows = []
    for method in args.methods:
        for n_cls in args.classes:
            for batch in args.batches:
                rows.append(measure(method, clip_model, n_cls, batch, device, args.repeats))
                print(tabulate([rows[-1]], headers="keys", floatfmt=".3g"), flush=True)
    print()
    print(f"device: {device}, threads: {torch.get_num_threads()}, CLIP: {'tiny' if args.tiny else 'ViT-B/16 sizes'}")
    print(tabulate(rows, headers="keys", floatfmt=".3g", tablefmt="github" if args.markdown else "simple"))


if __name__ == "__main__":
    main()
