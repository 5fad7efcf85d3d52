"""bf16 against fp32 on a CPU, in one run: CoOp and CoCoOp training and evaluation, and their logits.

The same random ViT-B/16-sized CLIP (no download), built as load_clip builds OpenAI's files, is stored in
fp32 and in bf16 (clip_backbone.to_precision, what PREC bf16 does on a CPU with native bf16); each method's
model is built on both with the same learned values. The two precisions' training steps alternate (the
order flipped each repeat), so a load change on a shared machine hits both alike. Printed per row: seconds
per training image (best of the repeats), the median [range] of the per-repeat speed-ups, evaluation
images per second, and the largest logit difference (evaluation mode, the same images).

    python benchmarks/precision_cpu.py                 # ViT-B/16 sizes, a few minutes on 2 cores
    python benchmarks/precision_cpu.py --tiny          # a tiny CLIP, seconds
"""

import argparse
import os
import statistics
import sys

import torch
from open_clip.model import build_model_from_openai_state_dict
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.speed import CLASSNAMES, build_cocoop, build_coop, ce_step, eval_rate, train_step  # noqa: E402
from coop_toolkit.trainers.clip_backbone import to_precision  # noqa: E402
from coop_toolkit.trainers.precision import native_bf16_flag, resolve_precision  # noqa: E402
from tools.tiny_clip import build_tiny_clip, openai_state_dict  # noqa: E402

CPU = torch.device("cpu")
# (method, builder, training batch, classes); evaluation runs at EVAL_BATCH
ROWS = [("CoOp", build_coop, 32, 100), ("CoCoOp", build_cocoop, 4, 10)]
EVAL_BATCH = 32


def build_clip(tiny, prec):
    torch.manual_seed(0)
    if tiny:
        model = build_tiny_clip()
    else:
        import open_clip

        model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    model = build_model_from_openai_state_dict(openai_state_dict(model))  # as load_clip builds OpenAI's files
    return to_precision(model, prec).eval().requires_grad_(False)


def measure(name, build, batch, classes, clips, repeats):
    models = {prec: build(clip, CLASSNAMES[:classes]) for prec, clip in clips.items()}
    models["bf16"].prompt_learner.load_state_dict(models["fp32"].prompt_learner.state_dict())
    gen = torch.Generator().manual_seed(1)
    size = clips["fp32"].visual.image_size
    images, eval_images = torch.randn(batch, 3, *size, generator=gen), torch.randn(EVAL_BATCH, 3, *size, generator=gen)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    with torch.no_grad():
        logits = {prec: model.eval()(eval_images).float() for prec, model in models.items()}
    row = {"method": name, "classes": classes, "batch": batch}
    row["max |logit diff|"] = (logits["bf16"] - logits["fp32"]).abs().max().item()
    row["max |logit|"] = logits["fp32"].abs().max().item()
    times = {prec: [] for prec in models}
    optims = {p: torch.optim.SGD([q for q in m.parameters() if q.requires_grad], lr=1e-3) for p, m in models.items()}
    for model in models.values():
        model.train()
    for r in range(repeats + 1):  # the first round warms up
        for prec in list(models)[:: 1 if r % 2 == 0 else -1]:
            seconds, _ = train_step(ce_step(models[prec]), models[prec], images, labels, optims[prec], CPU, prec)
            if r:
                times[prec].append(seconds)
    ratios = sorted(f / b for f, b in zip(times["fp32"], times["bf16"]))
    for prec in models:
        row[f"{prec} s/img"] = min(times[prec])
    row["train speed-up median [range]"] = f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]"
    for prec, model in models.items():
        row[f"{prec} eval img/s"] = eval_rate(model.eval(), eval_images, CPU, prec, batches=2)
    row["eval speed-up"] = row["bf16 eval img/s"] / row["fp32 eval img/s"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny CLIP instead of ViT-B/16 sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", help="only these rows (CoOp, CoCoOp)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if resolve_precision("bf16", CPU, "--prec") != "bf16":
        raise SystemExit("this CPU has no native bf16: PREC bf16 runs in fp32 here, there is nothing to compare")
    clips = {prec: build_clip(args.tiny, prec) for prec in ("fp32", "bf16")}
    rows = []
    for name, build, batch, classes in ROWS:
        if not args.methods or name in args.methods:
            rows.append(measure(name, build, batch, classes, clips, args.repeats))
            print(tabulate(rows[-1:], headers="keys", floatfmt=".3g"), flush=True)
    print(
        f"\nCPU: {native_bf16_flag()}, threads: {torch.get_num_threads()}, CLIP: {'tiny' if args.tiny else 'ViT-B/16'}"
    )
    print(tabulate(rows, headers="keys", floatfmt=".3g", tablefmt="github" if args.markdown else "simple"))
    return rows


if __name__ == "__main__":
    main()
