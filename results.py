"""Summarise a whole output tree into the papers' tables.

    python results.py output                       # print every table, write output/results/*
    python results.py output --paper --ci95        # beside each cell: the published number and the gap
    python results.py output --out tables --plots  # also PNG figures (pip install -e ".[plots]")

Reads every run's metrics.json (full precision) and falls back to the result block of log.txt for runs of
the original CoOp code. Groups runs by protocol from their place in the tree (see reporting/runs.py):
base-to-new (Base from the train_base run, New from the test_new run, H = harmonic mean; the Average
row's H is HM(average Base, average New), as in the CoCoOp paper; with several methods also a table per
dataset with a row per method, zero-shot CLIP being ZeroshotCLIP runs in the base2new layout),
cross-dataset and domain generalisation (ImageNet-trained models evaluated elsewhere), few-shot
(accuracy by shots) and zero-shot. Writes <table>.csv, results.md, results.json and runs.csv into --out.
A dataset's row is named by its folder in the layout (so two image folders of your own, both
DATASET.NAME ImageFolder, are two rows); a corrupt metrics.json and a folder outside the layouts are
skipped with a warning saying why. A user error (no such folder, no runs in a known layout, an --out
that cannot be written, --plots without matplotlib) is one `error:` line and exit status 2.
"""

import argparse
import logging
import os
import sys

from dasslite.cli import ArgumentParser, NothingFoundError, UsageError, check_output_folder, run_cli
from dasslite.errors import UserFileNotFoundError
from reporting.render import has_paper_numbers, to_text, write_all
from reporting.runs import LAYOUTS, collect_runs
from reporting.tables import build_tables

logger = logging.getLogger("results")


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="output", help="output tree to read (default: output)")
    parser.add_argument("--out", help="folder for the CSV / JSON / Markdown files (default: ROOT/results)")
    parser.add_argument("--ci95", action="store_true", help="95%% confidence interval instead of std")
    parser.add_argument("--paper", action="store_true", help="show the published numbers and differences")
    parser.add_argument("--plots", action="store_true", help="also write PNG plots (needs matplotlib)")
    parser.add_argument(
        "--exact-cfg",
        action="store_true",
        help="group by exact config name (default: configs differing only in _epN are one "
        "table, as the papers' recipes mix them)",
    )
    parser.add_argument("--decimals", type=int, default=2, help="decimals in text and Markdown")
    parser.add_argument("--quiet", action="store_true", help="write the files without printing tables")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    if args.decimals < 0:
        raise UsageError(f"--decimals must be 0 or more; got {args.decimals}")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not os.path.isdir(args.root):
        raise UserFileNotFoundError(
            f'no such folder: "{args.root}"; give the output tree of your runs (default: output)'
        )
    out = args.out or os.path.join(args.root, "results")
    check_output_folder(out, "--out")  # before the work, not after it
    if args.plots:
        from reporting.plots import require_matplotlib

        require_matplotlib()
    runs = collect_runs(args.root)
    tables = build_tables(runs, ci95=args.ci95, exact_cfg=args.exact_cfg)
    if not tables:
        raise NothingFoundError(
            f"no finished runs in a known layout under {args.root}; results.py reads run folders laid out as "
            f"{' or '.join(LAYOUTS)}"
        )
    if not args.quiet:
        for table in tables:
            print(to_text(table, args.paper, args.decimals), end="\n\n")
    if args.paper:
        note_tables_without_paper(tables)
    paths = write_all(tables, runs, out, args.paper, "CI95" if args.ci95 else "std", args.decimals)
    if args.plots:
        from reporting.plots import write_plots

        paths += write_plots(os.path.join(out, "results.json"), os.path.join(out, "plots"))
    logger.info("wrote %d files to %s", len(paths), out)
    return 0


def note_tables_without_paper(tables, listed=3):
    """--paper: one line naming the tables no published row matches (they print as without --paper)."""
    from reporting import paper_numbers  # the published rows come from the trainers' cards: imports torch

    missing = [t.title for t in tables if not has_paper_numbers(t)]
    if missing:
        more = f" and {len(missing) - listed} more" if len(missing) > listed else ""
        logger.warning(
            "--paper: no published row matches the table(s) %s%s, which show your numbers alone (published: %s, "
            "with CLIP ViT-B/16, and for few-shot and zero-shot also the ResNets, on the papers' benchmarks)",
            " | ".join(missing[:listed]),
            more,
            ", ".join(sorted(set(paper_numbers.METHOD.values()))),
        )


if __name__ == "__main__":
    sys.exit(run_cli(main))
