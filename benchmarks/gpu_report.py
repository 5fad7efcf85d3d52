"""The GPU check's report: speed.py's rows against the targets, and the base-to-new projection, as Markdown.

    python benchmarks/gpu_report.py --device cuda --prec fp16 --out benchmarks/gpu_check_result.md
    python benchmarks/gpu_report.py --tiny --device cpu --out /tmp/report.md     # the code path, in a minute

benchmarks/gpu_check.sh runs it after the `cuda` tests. The Markdown goes to --out and to stdout.
"""

import argparse
import dataclasses
import datetime
import os
import sys

import torch
from tabulate import tabulate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import projection  # noqa: E402
import speed  # noqa: E402

from benchmarks import cases, speed_deep  # noqa: E402

# Speed-ups to reach on one GPU in fp16 at ViT-B/16 sizes: (what, method, classes, batch, column, at least)
TARGETS = [
    ("CoCoOp training, batch 1, 50 classes", "CoCoOp", 50, 1, "train speed-up", 3.0),
    ("CoCoOp evaluation, 1000 classes", "CoCoOp", 1000, 1, "eval speed-up", 4.0),
    ("CoOp training, 100 classes", "CoOp", 100, 32, "train speed-up", 1.5),
]
# Logits of ours and of the reference agree within this, relative to the largest logit (the precision's
# rounding; the bound of tests/precision_matrix.py: LOGIT_TOLERANCE).
LOGIT_AGREEMENT = {"fp32": 1e-4, "bf16": 8e-2, "fp16": 1e-2}
SUMMARY_COLUMNS = ("method", "train steps per seed", "ours train h", "ours test h", "ours h", "reference h", "speed-up")
SUMMARY_HEADERS = {"ours h": "ours total h", "reference h": "reference total h"}


def speed_table(rows, memory):
    columns = [
        ("method", "method"),
        ("classes", "classes"),
        ("batch", "batch"),
        ("reference s/img", "reference s/img"),
        ("ours s/img", "ours s/img"),
        ("train speed-up", "train speed-up"),
        ("reference eval img/s", "reference eval img/s"),
        ("ours eval img/s", "ours eval img/s"),
        ("eval speed-up", "eval speed-up"),
        ("reference MB", f"reference {memory} MB"),
        ("ours MB", f"ours {memory} MB"),
        ("max |logit diff|", "max \\|logit diff\\|"),
    ]
    body = [[f"{r[k]:.1e}" if k == "max |logit diff|" else r[k] for k, _ in columns] for r in rows]
    return tabulate(body, headers=[h for _, h in columns], tablefmt="github", floatfmt=".3g")


def target_lines(rows, prec):
    """One line per target: measured value, and met / missed."""
    lines = []
    for what, method, classes, batch, column, least in TARGETS:
        found = [r for r in rows if (r["method"], r["classes"], r["batch"]) == (method, classes, batch)]
        if not found:
            lines.append(f"- {what}: at least {least}x; not measured in this run")
            continue
        value = found[0][column]
        lines.append(f"- {what}: at least {least}x; measured {value:.2f}x ({'met' if value >= least else 'MISSED'})")
    over = [
        f"{r['method']} {r['classes']} classes batch {r['batch']}" for r in rows if r["ours MB"] > r["reference MB"]
    ]
    lines.append(f"- memory not above the reference's in any row: {'MISSED in ' + ', '.join(over) if over else 'met'}")
    bound = LOGIT_AGREEMENT[prec]
    worst = max(r["max |logit diff|"] / max(1.0, r["max |logit|"]) for r in rows)
    verdict = "met" if worst <= bound else "MISSED"
    lines.append(
        f"- logits agree within {bound:g} ({prec}; relative to the largest logit, as in tests/test_cuda.py): "
        f"largest difference {worst:.1e} ({verdict})"
    )
    return lines


def case_for(trainer, config_file=""):
    """speed.py's builders of ours and of the reference for `trainer` (its first declared row). Given
    the config the table runs, a deep-prompt method is built with its prompt lengths and depths, which
    set its cost; the CoOp family's context length barely changes a 77-token pass and is left alone."""
    case = cases.first_case(trainer)
    if case is not None and config_file and trainer in speed_deep.TRAINERS:
        case = dataclasses.replace(case, build=speed_deep.build(speed_deep.TRAINERS[trainer], config_file))
    return case


def measure_step_times(case, protocol, clip_model, device, prec, repeats, eval_batch=None):
    """StepTimes of ours and of the reference at the two ends of the tables' class range."""
    points = {"ours": ([], []), "reference": ([], [])}
    for classes in projection.class_range():
        at = dataclasses.replace(
            case, batch=protocol.batch, classes=classes, eval_batch=eval_batch or protocol.test_batch
        )
        row = speed.measure(at, clip_model, device, repeats, prec)
        for impl, (train, test) in points.items():
            train.append((classes, row[f"{impl} s/img"] * protocol.batch))
            test.append((classes, 1 / row[f"{impl} eval img/s"]))
    return {
        impl: projection.StepTimes(projection.Affine.through(*train), projection.Affine.through(*test))
        for impl, (train, test) in points.items()
    }


def merged_rows(trainer, ours, reference):
    """Rows of hours per dataset (and the total), ours beside the reference's."""
    rows = []
    for mine, theirs in zip(ours, reference):
        row = {"method": trainer, "dataset": mine["dataset"], "train steps per seed": mine["train steps"]}
        row["ours train h"], row["ours test h"] = mine["train s"] / 3600, mine["test s"] / 3600
        row["ours h"] = row["ours train h"] + row["ours test h"]
        row["reference h"] = (theirs["train s"] + theirs["test s"]) / 3600
        row["speed-up"] = row["reference h"] / row["ours h"]
        rows.append(row)
    return rows


def project_trainer(trainer, clip_model, device, prec, repeats, eval_batch=None):
    """Rows of hours per dataset and the total for `trainer`'s base-to-new table, or None without a case."""
    case = case_for(trainer, projection.config_path(trainer, "caltech101"))
    if case is None:
        return None
    protocol = projection.read_protocol(trainer, "caltech101")
    times = measure_step_times(case, protocol, clip_model, device, prec, repeats, eval_batch)
    return merged_rows(trainer, *(projection.project_table(trainer, times[i]) for i in ("ours", "reference")))


def header(args, device, prec):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    size = "a tiny CLIP (the code path, not the figures)" if args.tiny else "ViT-B/16 sizes (random weights)"
    return f"{now}, {name}, torch {torch.__version__}, {prec}, {size}"


def markdown_table(rows, columns, headers=None):
    body = [[r[k] for k in columns] for r in rows]
    return tabulate(body, headers=[(headers or {}).get(k, k) for k in columns], tablefmt="github", floatfmt=".3g")


def projection_section(summary, details, skipped):
    lo, hi = projection.class_range()
    out = [
        f"Projected compute time of the base-to-new tables ({len(projection.DATASETS)} datasets x "
        f"{projection.SEEDS} seeds, {projection.SHOTS} shots, the shipped configs; per-step times measured at "
        f"{lo} and {hi} classes and interpolated; data loading and start-up not counted):",
        "",
        markdown_table(summary, SUMMARY_COLUMNS, SUMMARY_HEADERS),
        "",
    ]
    if skipped:
        out += [f"(no speed.py case for {', '.join(skipped)}: not projected)", ""]
    detail_columns = ("method", "dataset", "train steps per seed", "ours h", "reference h", "speed-up")
    table = markdown_table(details, detail_columns)
    return out + ["<details><summary>Per dataset</summary>", "", table, "", "</details>", ""]


# The last line of a report written midway: what a run stopped by its time limit leaves behind.
STOPPED_HERE = "(the report stopped here: the run did not finish)"


def build_report(args, write=lambda text: None):
    """The Markdown report; `write` gets the report so far after each measurement, so a run stopped by
    its time limit still leaves its figures."""
    device = torch.device(args.device)
    prec = speed.resolve_precision(args.prec, device, "--prec")
    torch.manual_seed(0)
    clip_model = speed.build_clip(args.tiny, prec, device)
    rows = []
    for case in speed.select_cases(speed.CASES, args.methods):
        rows.append(speed.measure(case, clip_model, device, args.repeats, prec))
        print(speed.format_rows(rows[-1:]), flush=True)
        write("\n".join(speed_section(args, device, prec, rows) + [STOPPED_HERE]))
    out = speed_section(args, device, prec, rows)
    summary, details, skipped = [], [], []
    for trainer in projection.BASE2NEW_CONFIGS:
        table = project_trainer(trainer, clip_model, device, prec, args.repeats, args.eval_batch)
        if table is None:
            skipped.append(trainer)
            continue
        details, summary = details + table[:-1], summary + table[-1:]
        print(f"projected {trainer}: {table[-1]['ours h']:.3g} h against {table[-1]['reference h']:.3g} h", flush=True)
        write("\n".join(out + projection_section(summary, details, skipped) + [STOPPED_HERE]))
    return "\n".join(out + projection_section(summary, details, skipped))


def speed_section(args, device, prec, rows):
    out = [f"### GPU check: {header(args, device, prec)}", ""]
    if args.tests:
        out += [f"Tests: `{args.tests}`", ""]
    out += ["Training seconds per image, evaluation images per second, memory (MB; peak allocated on CUDA,"]
    out += ["saved activations on CPU), ours against the reference computation in the same run:", ""]
    memory = "peak" if device.type == "cuda" else "saved"
    return out + [speed_table(rows, memory), "", "Targets:", "", *target_lines(rows, prec), ""]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny CLIP instead of ViT-B/16 sizes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--prec", default="fp16", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--methods", nargs="+", help="only these methods' speed.py rows")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval-batch", type=int, help="test batch of the projection (default: the config's)")
    parser.add_argument("--tests", default="", help="how the cuda tests went (a line for the report)")
    parser.add_argument("--out", help="write the Markdown here too")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    report = build_report(args, write=lambda text: write_report(args.out, text))
    print(report)
    write_report(args.out, report)
    return report


def write_report(path, text):
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
