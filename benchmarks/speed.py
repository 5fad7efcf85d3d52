"""Speed and memory of each trainer's computation: the reference (authors') computation against ours, in one run.

(a) reference: the original code's computation, written plainly: CoCoOp runs the text encoder once
    per image over all classes at the full 77 tokens; CoOp encodes all class prompts at 77 tokens at
    every training step and at every evaluation batch. Its text blocks run sequence-first (L, N, D),
    the layout OpenAI's CLIP in the original code takes (as ours now does too).
(b) ours: trimmed text sequences, CoCoOp's prompts of the whole batch in one chunked pass, CoOp's class
    features computed once per evaluation.

Both use the same modules and weights (random ViT-B/16-sized CLIP by default, no download), so
their logits are compared too. Memory: peak allocated bytes on CUDA; on CPU the bytes of tensors
autograd saves for backward in a training step (the part that grows with batch and classes).

The rows (`CASES`) are declared by each method's benchmark module, keyed by its trainer name
(benchmarks/cases.py: `speed_cases`; see `coop_case` / `cocoop_case` here, speed_deep.py,
speed_adapters.py), and `--cases` / `--methods` select among them.

    python benchmarks/speed.py               # ViT-B/16 sizes; slow on CPU (tens of minutes)
    python benchmarks/speed.py --tiny        # a tiny CLIP, seconds
    python benchmarks/speed.py --device cuda --prec fp16
    python benchmarks/speed.py --methods CoCoOp --batches 1 8 --classes 5 50   # a grid instead of CASES
"""

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from open_clip.model import build_model_from_openai_state_dict  # noqa: E402

from benchmarks.cases import Case, all_cases, speed_cases  # noqa: E402
from coop_toolkit import trainers  # noqa: E402
from coop_toolkit.trainers import cocoop, coop, kgcoop, prograd  # noqa: E402
from coop_toolkit.trainers.clip_backbone import to_precision  # noqa: E402
from coop_toolkit.trainers.handwritten import handwritten_class_features  # noqa: E402
from coop_toolkit.trainers.precision import autocast_for, resolve_precision, stored_precision  # noqa: E402
from coop_toolkit.trainers.prograd import project_conflicting  # noqa: E402
from dasslite.config import get_cfg_default  # noqa: E402
from tools.tiny_clip import build_tiny_clip, openai_state_dict  # noqa: E402

CLASSNAMES = [f"class number {i}" for i in range(1000)]


# ---- CLIP -------------------------------------------------------------------------------------------


def build_clip(tiny, prec, device):
    """Random CLIP (tiny or ViT-B/16-sized) converted as load_clip converts OpenAI's release files."""
    if tiny:
        model = build_tiny_clip()
    else:
        import open_clip

        model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    stored = stored_precision(prec, device)
    if stored != "fp32":  # OpenAI's half-precision conversion, then the precision, as load_clip stores it
        model = to_precision(build_model_from_openai_state_dict(openai_state_dict(model)), stored)
    return model.to(device).eval()


def method_cfg():
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    cfg.TRAINER.COOP.CTX_INIT = cfg.TRAINER.COCOOP.CTX_INIT = "a photo of a"
    return cfg


def learn_only(model, prefix="prompt_learner."):
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefix))
    return model


def full_length_encoder(model):
    """The original's text encoder on the same modules: all 77 positions, the blocks sequence-first
    (x.permute(1, 0, 2) into OpenAI's CLIP), written apart from ours (speed_deep.authors_text_features)."""
    enc = model.text_encoder

    class Original:
        dtype = enc.dtype

        def __call__(self, prompts, token_ids):
            # imported here: speed_deep declares its rows when imported, after this module's (the table's order)
            from benchmarks.speed_deep import authors_text_features

            return authors_text_features(enc, prompts, token_ids)

    return Original()


def reference_image_features(model, images, enc):
    feats = model.image_encoder(images.to(enc.dtype)).float()
    return feats / feats.norm(dim=-1, keepdim=True)


def reference_inputs(model, images):
    """The full-length text encoder, the normalised image features and the prompt learner, as the original
    computes them (docs/reference-behaviour.md, "CoOp and CoCoOp computations")."""
    enc = full_length_encoder(model)
    return enc, reference_image_features(model, images, enc), model.prompt_learner


# ---- methods: ours and the reference computation ----------------------------------------------------


def build_coop(clip_model, classnames):
    return learn_only(coop.CustomCLIP(method_cfg(), classnames, clip_model))


def coop_reference(model, images):
    """CoOp as the original computes it: all class prompts at 77 tokens at every call."""
    enc, feats, pl = reference_inputs(model, images)
    text = enc(pl(), pl.token_ids).float()
    text = text / text.norm(dim=-1, keepdim=True)
    return model.logit_scale.exp() * feats @ text.t()


def build_cocoop(clip_model, classnames):
    return learn_only(cocoop.CustomCLIP(method_cfg(), classnames, clip_model))


def cocoop_reference(model, images):
    """CoCoOp as the original computes it: one 77-token text pass over all classes per image."""
    enc, feats, pl = reference_inputs(model, images)
    rows = []
    for f in feats:
        ctx = (pl.ctx + pl.meta_net(f.unsqueeze(0))).unsqueeze(0).expand(pl.n_cls, -1, -1)
        text = enc(torch.cat([pl.token_prefix, ctx, pl.token_suffix], dim=1), pl.token_ids).float()
        text = text / text.norm(dim=-1, keepdim=True)
        rows.append(model.logit_scale.exp() * f @ text.t())
    return torch.stack(rows)


def build_kgcoop(clip_model, classnames):
    def knowledge():
        return handwritten_class_features(clip_model, classnames, ["a photo of a {}."])

    learner = lambda *args: kgcoop.KgPromptLearner(*args, knowledge=knowledge)  # noqa: E731
    return learn_only(
        coop.CustomCLIP(method_cfg(), classnames, clip_model, learner_class=learner), "prompt_learner.ctx"
    )


KGCOOP_W = 8.0  # the authors' scripts' weight


def kgcoop_step(model, images, labels, optim):
    """Ours: trimmed text pass; the hand-written features were computed once, at build."""
    logits, _, text = model(images, details=True)
    kg = kgcoop.knowledge_term(text, model.prompt_learner.knowledge)
    sgd_step(F.cross_entropy(logits.float(), labels) + KGCOOP_W * kg, optim)


def kgcoop_reference_step(model, images, labels, optim):
    """The authors': 77-token text pass, CE + W * (1 - mean cos) to the features computed at init."""
    enc = full_length_encoder(model)
    feats = reference_image_features(model, images, enc)
    pl = model.prompt_learner
    text = enc(pl(), pl.token_ids).float()
    text = text / text.norm(dim=-1, keepdim=True)
    logits = model.logit_scale.exp() * feats @ text.t()
    score = 1.0 - torch.nn.CosineSimilarity(dim=1, eps=1e-07)(text, pl.knowledge).mean()
    sgd_step(F.cross_entropy(logits, labels) + KGCOOP_W * score, optim)


def build_prograd(clip_model, classnames):
    model = coop.CustomCLIP(method_cfg(), classnames, clip_model, learner_class=prograd.ProGradPromptLearner)
    teacher = handwritten_class_features(clip_model, classnames, ["a photo of a {}."])
    model.register_buffer("teacher_text_features", teacher, persistent=False)
    return learn_only(model)


def prograd_step(model, images, labels, optim):
    """Ours: one image pass shared by student and teacher, trimmed text pass, projected update."""
    logits, image, _ = model(images, details=True)
    with torch.no_grad():
        teacher = model.logit_scale.exp() * image.float() @ model.teacher_text_features.t()
    prograd_update(model, F.cross_entropy(logits.float(), labels), prograd.soft_cross_entropy(logits, teacher, 1.0))


def prograd_reference_step(model, images, labels, optim):
    """The authors': the student's 77-token pass, and the teacher CLIP's own image pass at every step."""
    logits = coop_reference(model, images)
    with torch.no_grad():
        enc = full_length_encoder(model)
        teacher = (
            model.logit_scale.exp() * reference_image_features(model, images, enc) @ model.teacher_text_features.t()
        )
    prograd_update(model, F.cross_entropy(logits, labels), prograd.soft_cross_entropy(logits, teacher, 1.0))


def prograd_update(model, xe, kl, lr=1e-3):
    """ProGrad's update (coop_toolkit.trainers.prograd: ProGradUpdate) on the model's learned parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    b_grads = torch.autograd.grad(kl, params, retain_graph=True)
    a_grads = torch.autograd.grad(xe, params)
    with torch.no_grad():
        for p, a, b in zip(params, a_grads, b_grads):
            p -= lr * project_conflicting(a, b)


def sgd_step(loss, optim):
    optim.zero_grad()
    loss.backward()
    optim.step()


def kgcoop_case(batch, classes, **kw):
    steps = dict(step=kgcoop_step, reference_step=kgcoop_reference_step)
    return Case("KgCoOp", build_kgcoop, coop_reference, batch, classes, **steps, **kw)


def prograd_case(batch, classes, **kw):
    steps = dict(step=prograd_step, reference_step=prograd_reference_step)
    return Case("ProGrad", build_prograd, coop_reference, batch, classes, **steps, **kw)


def coop_case(batch, classes, **kw):
    return Case("CoOp", build_coop, coop_reference, batch, classes, **kw)


def cocoop_case(batch, classes, **kw):
    return Case("CoCoOp", build_cocoop, cocoop_reference, batch, classes, **kw)


# The rows of benchmarks/README.md's table and targets; the other methods declare theirs in
# benchmarks/speed_*.py (benchmarks/cases.py).
speed_cases(
    "CoCoOp",
    cocoop_case(batch=1, classes=5),
    cocoop_case(batch=8, classes=5),
    cocoop_case(batch=1, classes=50),
    cocoop_case(batch=1, classes=1000),
)
speed_cases("CoOp", coop_case(batch=32, classes=100))
speed_cases("KgCoOp", kgcoop_case(batch=32, classes=100))
speed_cases("ProGrad", prograd_case(batch=32, classes=100))
CASES = all_cases()


# ---- measurement ------------------------------------------------------------------------------------


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


def ce_step(forward):
    """The default training step: cross-entropy on forward's logits."""

    def step(model, images, labels, optim):
        sgd_step(F.cross_entropy(forward(images).float(), labels), optim)

    return step


def train_step(step, model, images, labels, optim, device, prec="fp32"):
    """Seconds per training image and activation/peak memory (bytes) of one step."""
    counter = [0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    with saved_bytes_counter(counter, model), autocast_for(prec, device):
        step(model, images, labels, optim)
    sync(device)
    seconds = time.perf_counter() - start
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else counter[0]
    return seconds / len(images), memory


def eval_rate(forward, images, device, prec="fp32", batches=3):
    with torch.no_grad(), autocast_for(prec, device):
        forward(images)  # warm-up (and fills CoOp's class-feature cache, as in a real evaluation)
        sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            forward(images)
        sync(device)
    return batches * len(images) / (time.perf_counter() - start)


def interleaved_eval_rates(impls, images, device, prec="fp32", batches=3):
    """({name: images per second, best batch}, sorted per-batch ratios ours / reference): the
    implementations' evaluation batches alternate (the order flips each batch), as the training steps do,
    so that a load change on a shared machine hits both alike."""
    times = {name: [] for name in impls}
    with torch.no_grad(), autocast_for(prec, device):
        for forward in impls.values():
            forward(images)  # warm-up (and fills CoOp's class-feature cache, as in a real evaluation)
        for b in range(batches):
            for name in list(impls)[:: 1 if b % 2 == 0 else -1]:
                sync(device)
                start = time.perf_counter()
                impls[name](images)
                sync(device)
                times[name].append(time.perf_counter() - start)
    ratios = sorted(r / o for r, o in zip(times["reference"], times["ours"]))
    return {name: len(images) / min(t) for name, t in times.items()}, ratios


def measure(case, clip_model, device, repeats, prec="fp32"):
    """One row: seconds per training image, evaluation images per second and memory, for both."""
    model = case.build(clip_model, CLASSNAMES[: case.classes]).to(device)
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    images = torch.randn(case.batch, 3, *clip_model.visual.image_size, device=device)
    eval_images = torch.randn(case.eval_batch or case.batch, 3, *clip_model.visual.image_size, device=device)
    labels = torch.randint(0, case.classes, (case.batch,), device=device)
    impls = {"reference": lambda x: case.reference(model, x), "ours": model}
    with torch.no_grad(), autocast_for(prec, device):
        model.eval()
        reference = impls["reference"](images).float()
        diff = (reference - impls["ours"](images).float()).abs().max().item()
    row = {"method": case.name, "classes": case.classes, "batch": case.batch, "max |logit diff|": diff}
    row["max |logit|"] = reference.abs().max().item()
    train = {"reference": case.reference_step or ce_step(impls["reference"]), "ours": case.step or ce_step(model)}
    steps = interleaved_steps(train, model, images, labels, optim, device, repeats, prec)
    rates, eval_ratios = interleaved_eval_rates(impls, eval_images, device, prec)
    for name in impls:
        times, mem = zip(*steps[name])
        row[f"{name} s/img"] = min(times)
        row[f"{name} eval img/s"] = rates[name]
        row[f"{name} MB"] = max(mem) / 2**20
    row["train speed-up"] = row["reference s/img"] / row["ours s/img"]
    ratios = sorted(r[0] / o[0] for r, o in zip(steps["reference"], steps["ours"]))
    row["train speed-up median [range]"] = median_range(ratios)
    row["eval speed-up"] = row["ours eval img/s"] / row["reference eval img/s"]
    row["eval speed-up median [range]"] = median_range(eval_ratios)
    return row


def median_range(ratios):
    return f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]"


def interleaved_steps(train, model, images, labels, optim, device, repeats, prec):
    """{name: [(s/img, memory)] * repeats}: the implementations' training steps alternate (the order
    flips each repeat), so a load change on a shared machine hits both alike."""
    model.train()
    for step in train.values():
        train_step(step, model, images, labels, optim, device, prec)  # warm-up
    steps = {name: [] for name in train}
    for r in range(repeats):
        for name in list(train)[:: 1 if r % 2 == 0 else -1]:
            steps[name].append(train_step(train[name], model, images, labels, optim, device, prec))
    model.eval()
    return steps


def select_cases(cases, methods=None, names=None, batches=None, classes=None):
    """The rows to run: filtered by method or label; `batches` x `classes` replaces them by a grid."""
    chosen = [c for c in cases if (not methods or c.name in methods) and (not names or c.label in names)]
    if batches or classes:
        firsts = {c.name: c for c in reversed(chosen)}
        chosen = [
            dataclasses.replace(firsts[name], batch=b, classes=n)
            for name in dict.fromkeys(c.name for c in chosen)
            for n in classes or [firsts[name].classes]
            for b in batches or [firsts[name].batch]
        ]
    if not chosen:
        raise SystemExit(f"no case selected; cases: {', '.join(c.label for c in cases)}")
    return chosen


def format_rows(rows, markdown=False):
    shown = [{**r, "max |logit diff|": f"{r['max |logit diff|']:.1e}"} for r in rows]
    return tabulate(shown, headers="keys", floatfmt=".3g", tablefmt="github" if markdown else "simple")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny CLIP instead of ViT-B/16 sizes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--prec", default="fp32", choices=["fp32", "fp16", "bf16"], help="fp16 needs CUDA")
    parser.add_argument("--methods", nargs="+", help="only these methods' rows")
    parser.add_argument("--cases", nargs="+", help="only these rows, by label (e.g. CoCoOp-c50-b1)")
    parser.add_argument("--batches", nargs="+", type=int, help="a grid of these batches instead of the rows")
    parser.add_argument("--classes", nargs="+", type=int, help="a grid of these class counts instead of the rows")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    return parser.parse_args(argv)


def run(args):
    """Measure the selected rows; returns (rows, the precision actually run, a one-line description)."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    prec = resolve_precision(args.prec, device, "--prec")
    clip_model = build_clip(args.tiny, prec, device)
    rows = []
    for case in select_cases(CASES, args.methods, args.cases, args.batches, args.classes):
        rows.append(measure(case, clip_model, device, args.repeats, prec))
        print(format_rows(rows[-1:]), flush=True)
    size = "tiny" if args.tiny else "ViT-B/16 sizes"
    return rows, f"device: {device}, {prec}, threads: {torch.get_num_threads()}, CLIP: {size}"


def main(argv=None):
    args = parse_args(argv)
    rows, description = run(args)
    print()
    print(description)
    print(format_rows(rows, args.markdown))
    return rows


if __name__ == "__main__":
    main()
