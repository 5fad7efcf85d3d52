"""Classify images with a trained run: top-k class names with probabilities, one line (or row) per image.

    python predict.py RUN_DIR [--load-epoch N] [--topk 5] [--out preds.csv|preds.json] PATH...
    python predict.py --trainer ZeroshotCLIP --classnames classes.txt --backbone ViT-B/16 PATH...

RUN_DIR is a train.py --output-dir (config.yaml, run.json, checkpoints); the dataset folder is not
needed. PATH: image files and folders (searched recursively; hidden files and folders, such as macOS's
"._name.png", are skipped as training skips them). `--classnames FILE` (one class name per line, UTF-8)
classifies into other classes; `--backbone` says where the recorded CLIP weights are now (a file must
be the recorded one, by sha256; a zero-shot run takes any backbone); `--model-dir` where the weights
of an eval-only run are now. Without RUN_DIR, `--trainer ZeroshotCLIP` or `ZeroshotCLIP2` classifies
zero-shot into `--classnames`.

A file that cannot be read (empty, truncated, not an image) is skipped: the others are classified, the
summary at the end lists the skipped ones, and --out has a row for each with its `error`
(`--strict`: stop at the first one, exit status 2). Images are decoded by `--workers` threads while the
model classifies the batch before; --out is written as the images go and appears complete at the end.
"""

import argparse
import contextlib
import csv
import json
import sys
from dataclasses import dataclass, field

from dasslite.cli import ArgumentParser, UsageError, check_output_file, run_cli
from dasslite.errors import UserFileNotFoundError

OUT_SUFFIXES = (".csv", ".json")


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="RUN_DIR (unless --trainer), then images / folders")
    p.add_argument("--load-epoch", type=int, help="load model.pth.tar-N (default: the model the run reported)")
    p.add_argument("--topk", type=int, default=5, help="number of labels shown per image (default 5)")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the run's DATALOADER.TEST.BATCH_SIZE)")
    p.add_argument("--workers", type=int, help="threads decoding images (default: the CPU count, at most 8)")
    p.add_argument("--out", help="write the predictions to this .csv or .json file (one row per image)")
    p.add_argument("--strict", action="store_true", help="stop at the first file that cannot be read")
    p.add_argument("--classnames", help="text file with one class name per line (label order)")
    p.add_argument("--backbone", default="", help="CLIP weights to use (name, open_clip model:tag or file)")
    p.add_argument("--model-dir", default="", help="where the run's weights are (an eval-only run's model run)")
    p.add_argument("--trainer", default="", help="zero-shot trainer to use without a RUN_DIR (ZeroshotCLIP[2])")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="module or .py file defining the run's trainer, when it comes from outside the toolkit (repeatable)",
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="fp32 (default, exact), or bf16 (a CPU with native bf16, or a GPU) / fp16 (a GPU): faster",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_intermixed_args(argv)  # options may come between the paths
    for flag in ("topk", "batch_size", "workers", "load_epoch"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1; got {value}")
    if args.trainer and not (args.classnames and args.backbone):
        raise UsageError(f"--trainer {args.trainer} (no RUN_DIR) needs --classnames FILE and --backbone")
    if args.trainer and (args.model_dir or args.load_epoch is not None):
        raise UsageError(f"--trainer {args.trainer} learns nothing: --model-dir and --load-epoch need a RUN_DIR")
    if not args.trainer and len(args.paths) < 2:
        raise UsageError("give RUN_DIR and at least one image file or folder")
    return args


def read_classnames(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            names = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise UserFileNotFoundError(f'--classnames "{path}": no such file') from None
    except UnicodeDecodeError as e:
        raise UsageError(
            f'--classnames "{path}" is not UTF-8 text (byte {e.object[e.start]:#x} at offset {e.start}); '
            f"save it as UTF-8, one class name per line"
        ) from None
    except OSError as e:
        raise UsageError(f'--classnames "{path}" cannot be read ({e.strerror or e})') from None
    if not names:
        raise UsageError(f'--classnames "{path}" holds no class names; write one class name per line')
    if len(names) == 1:  # every image would get it with probability 1
        raise UsageError(f'--classnames "{path}" holds one class name ({names[0]}); give at least two, one per line')
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f'--classnames "{path}" repeats {", ".join(repeated[:5])}; each class name must appear once')
    return names


def load(args, classnames):
    import coop_toolkit as ct

    if args.trainer:
        return ct.zero_shot(
            classnames,
            args.backbone,
            trainer=args.trainer,
            device=args.device,
            precision=args.precision,
            plugins=args.plugin,
        )
    return ct.load_run(
        args.paths[0],
        args.load_epoch,
        backbone=args.backbone,
        classnames=classnames,
        device=args.device,
        model_dir=args.model_dir,
        precision=args.precision,
        plugins=args.plugin,
    )


def header(k):
    return ["path"] + [f"{kind}{i + 1}" for i in range(k) for kind in ("label", "probability")] + ["error"]


def csv_row(p, k):
    values = [v for name, prob in p.topk for v in (name, f"{prob:.6g}")]
    return [p.shown_path, *values, *[""] * (2 * k - len(values)), p.error or ""]


def json_row(p):
    topk = [{"label": name, "probability": prob} for name, prob in p.topk]
    return {"path": p.shown_path, "topk": topk, "error": p.error}


class OutFile:
    """--out, written row by row into a temp file that replaces the file once every row is in."""

    def __init__(self, path, k):
        self.path, self.k, self.rows = path, k, 0
        self.is_json = path.lower().endswith(".json")

    def __enter__(self):
        from dasslite.utils.io import atomic_write  # dasslite.utils loads torch: not for --help

        self.context = atomic_write(self.path, newline="", encoding="utf-8")
        self.file = self.context.__enter__()
        if self.is_json:
            self.file.write("[")
        else:
            self.csv = csv.writer(self.file)
            self.csv.writerow(header(self.k))
        return self

    def write(self, p):
        if self.is_json:
            self.file.write(("," if self.rows else "") + "\n  " + json.dumps(json_row(p)))
        else:
            self.csv.writerow(csv_row(p, self.k))
        self.rows += 1

    def __exit__(self, *exc):
        if self.is_json and exc[0] is None:
            self.file.write("\n]\n")
        return self.context.__exit__(*exc)


@dataclass
class Summary:
    """What main did: how many images were classified, and (path, why) of each file skipped."""

    predicted: int = 0
    failed: list = field(default_factory=list)


def classify(run, images, args, total):
    """Print a line per image, write --out, and return the Summary."""
    from tqdm import tqdm

    summary = Summary()
    k = min(args.topk, len(run.classnames))
    out = OutFile(args.out, k) if args.out else None
    predictions = run.iter_predict(images, args.topk, args.batch_size, strict=args.strict, workers=args.workers)
    with out or contextlib.nullcontext(), tqdm(total=total, desc="predict", unit="img", file=sys.stderr) as bar:
        for p in predictions:
            if p.error:
                summary.failed.append((p.shown_path, p.error))
            else:
                summary.predicted += 1
                bar.write(p.shown_path + "\t" + ", ".join(f"{name} ({prob:.3f})" for name, prob in p.topk), sys.stdout)
            if out:
                out.write(p)
            bar.update()
    return summary


def report(summary, out):
    if summary.failed:
        listed = "\n  ".join(error for _, error in summary.failed)
        print(
            f"{len(summary.failed)} of {summary.predicted + len(summary.failed)} files could not be read and were "
            f"skipped{' (rows with an error in ' + out + ')' if out else ''}:\n  {listed}",
            file=sys.stderr,
        )
    if out:
        rows = summary.predicted + len(summary.failed)
        print(f"Wrote {rows} row{'s' * (rows != 1)} to {out}", file=sys.stderr)


def main(argv=None):
    """Run predict.py with `argv`; returns the Summary (user errors are raised: run_cli prints them)."""
    args = parse_args(argv)
    if args.out:
        check_output_file(args.out, "--out", OUT_SUFFIXES)
    classnames = read_classnames(args.classnames) if args.classnames else None
    import coop_toolkit as ct

    paths = args.paths if args.trainer else args.paths[1:]
    total = sum(1 for _ in ct.iter_images(paths))
    if not total:
        raise UserFileNotFoundError(f"No image files in {', '.join(paths)}; give image files or folders of them")
    run = load(args, classnames)
    summary = classify(run, ct.iter_images(paths), args, total)
    report(summary, args.out)
    return summary


if __name__ == "__main__":
    run_cli(main)
