r"""Put benchmarks in place under the data root (DATASETS.md), then check them.

    python prepare_data.py caltech101 dtd eurosat --root $DATA     # fetched with torchvision, laid out
    python prepare_data.py imagenet --root $DATA --devkit ILSVRC2012_devkit_t12.tar.gz
    python prepare_data.py all --root $DATA                        # every benchmark

Caltech101, OxfordPets, Flowers102, Food101, FGVCAircraft, SUN397, DTD and EuroSAT are downloaded and
verified by torchvision's dataset classes into --cache (default $DATA/torchvision-downloads), with progress
bars, and linked into the layout the readers expect (nothing is copied). ImageNet: the validation images
are sorted into class folders by the official devkit's labels (--devkit) and classnames.txt is written;
the ImageNet variants get a copy of it. For the split files and what no library fetches, this prints what
to download, from where, and where to put it. Running it again does only what is left (an interrupted
download or sort continues). Exit status: 0 when every named dataset is then usable, 1 otherwise, 2 for a
wrong argument.
"""

import argparse
import logging
import sys

from coop_toolkit.datasets.catalog import BENCHMARKS
from coop_toolkit.datasets.check import check_datasets, format_reports
from coop_toolkit.datasets.prepare import prepare_dataset
from dasslite.cli import ArgumentParser, run_cli


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+", help='datasets to prepare (config names, e.g. oxford_pets), or "all"')
    p.add_argument("--root", required=True, help="the folder that holds every dataset (DATASET.ROOT)")
    p.add_argument("--cache", default=None, help="torchvision's download folder (default: ROOT/torchvision-downloads)")
    p.add_argument("--devkit", default=None, help="ImageNet: ILSVRC2012_devkit_t12.tar.gz (or its extracted folder)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of user errors too")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    names = list(BENCHMARKS) if args.names == ["all"] else args.names
    for name in names:
        prep = prepare_dataset(args.root, name, cache=args.cache, devkit=args.devkit)
        print(f"{prep.name}:")
        print("".join(f"  done: {line}\n" for line in prep.done) or "  nothing to do\n", end="")
        if prep.todo:
            print("  download by hand:" + "".join(f"\n    - {line}" for line in prep.todo))
    reports = check_datasets(args.root, names)
    print("\n" + format_reports(reports))
    return 0 if all(r.usable for r in reports) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("dasslite").setLevel(logging.WARNING)  # not the readers' progress lines
    sys.exit(run_cli(main))
