r"""Check a data root against the fifteen benchmarks' layouts (DATASETS.md), before a run finds out.

    python check_data.py --root $DATA                    # every benchmark: found / missing / incomplete
    python check_data.py --root $DATA oxford_pets dtd    # only these (exit status 1 if one is unusable)
    python check_data.py --root $DATA imagenet --decode  # also open every image (a progress bar)

For each dataset: images per split against the published split's sizes, the split file, the first missing
or unreadable files, and the fix for each known mistake (ImageNet's validation images not in class
folders, no classnames.txt, an archive not extracted, a dataset one folder too deep). Fast by default: only
file stats. Exit status: 0 when every named dataset (without names: every dataset found) is usable, 1
otherwise, 2 for a wrong argument.
"""

import argparse
import logging
import sys

from coop_toolkit.datasets.check import MISSING, check_datasets, format_reports
from dasslite.cli import ArgumentParser, UsageError, run_cli


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="datasets to check (config names, e.g. oxford_pets; default: all fifteen)")
    p.add_argument("--root", required=True, help="the folder that holds every dataset (DATASET.ROOT)")
    p.add_argument("--decode", action="store_true", help="also open every image (slow: as long as an epoch)")
    p.add_argument("--workers", type=int, default=4, help="threads that decode images with --decode (default 4)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of user errors too")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1; got {args.workers}")
    reports = check_datasets(args.root, args.names or None, decode=args.decode, num_workers=args.workers)
    print(format_reports(reports))
    # Without names a dataset that is simply not there is not a failure: few users have all fifteen.
    unusable = [r for r in reports if not r.usable and (args.names or r.status != MISSING)]
    return 1 if unusable else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.exit(run_cli(main))
