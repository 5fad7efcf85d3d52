"""DatasetBase (Dassl's interface) and the pipeline every benchmark shares (docs/reference-behaviour.md,
"Dataset pipeline").

A dataset module only finds its folder and turns it into lists of Datum; the RNG, few-shot
sampling, its cache and the base/new class split all live here, once.
"""

import logging
import math
import os
import random

from ..config import SUBSAMPLE_CHOICES
from ..errors import DataError, UserFileNotFoundError
from . import fewshot
from .datum import Datum

logger = logging.getLogger(__name__)


def make_rng(cfg):
    """The one RNG a dataset uses: split generation first, then the few-shot draw.

    random.Random(s) yields the same stream as random.seed(s) on the global generator, so passing
    this instance through in the reference's order reproduces the reference's picks.
    """
    seed = cfg.SEED
    return random.Random(seed) if seed is not None and seed >= 0 else random.Random()


def dataset_root(cfg):
    root = cfg.DATASET.ROOT
    if not root:
        raise DataError(
            "DATASET.ROOT is empty: pass --root /path/to/datasets (the folder that holds "
            "every dataset, see DATASETS.md)."
        )
    return os.path.abspath(os.path.expanduser(root))


def require_dataset_dir(cfg, folder, anchor):
    """ROOT/<folder>, or a FileNotFoundError naming it and the DATASETS.md section to follow."""
    root = dataset_root(cfg)
    path = os.path.join(root, folder)
    if not os.path.isdir(path):
        raise UserFileNotFoundError(
            f'{cfg.DATASET.NAME}: dataset folder not found: expected "{path}" (the folder "{folder}" '
            f'under DATASET.ROOT="{root}"). Prepare it as described in DATASETS.md#{anchor}.'
        )
    return path


def require_path(path, what, anchor):
    """Fail early, naming a file or folder the dataset needs and where its layout is described."""
    if not os.path.exists(path):
        raise UserFileNotFoundError(f'{what} not found: expected "{path}". See DATASETS.md#{anchor}.')
    return path


class DatasetBase:
    """Labelled lists of Datum: train_x, train_u (unused by CoOp), val and test.

    `num_classes`, `lab2cname` and `classnames` come from train_x, as in Dassl (so after a base/new
    split they describe the selected half); a dataset without train_x falls back to test, then val.
    """

    dataset_dir = ""  # the folder under DATASET.ROOT; subclasses set it
    domains = []

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x = list(train_x or [])
        self._train_u = list(train_u or [])
        self._val = list(val or [])
        self._test = list(test or [])
        source = self._train_x or self._test or self._val
        self._num_classes = self.get_num_classes(source)
        self._lab2cname, self._classnames = self.get_lab2cname(source)

    train_x = property(lambda self: self._train_x)
    train_u = property(lambda self: self._train_u)
    val = property(lambda self: self._val)
    test = property(lambda self: self._test)
    num_classes = property(lambda self: self._num_classes)
    lab2cname = property(lambda self: self._lab2cname)
    classnames = property(lambda self: self._classnames)

    @staticmethod
    def get_num_classes(data_source):
        return max((d.label for d in data_source), default=-1) + 1

    @staticmethod
    def get_lab2cname(data_source):
        """({label: classname}, [classname sorted by label])."""
        mapping = {d.label: d.classname for d in data_source}
        labels = sorted(mapping)
        return {y: mapping[y] for y in labels}, [mapping[y] for y in labels]

    @staticmethod
    def split_dataset_by_label(data_source):
        return fewshot.split_dataset_by_label(data_source)

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1, repeat=False, rng=None):
        """K items per class of each source (Dassl's semantics; one list in -> one list out).

        Without `rng` it draws from Python's global `random`, as Dassl does, so a ported Dassl dataset
        file makes Dassl's picks; this toolkit's datasets pass a seeded generator.
        """
        rng = random if rng is None else rng
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources
        logger.info(f"Creating a {num_shots}-shot dataset")
        output = [fewshot.sample_fewshot(src, num_shots, rng, repeat=repeat) for src in data_sources]
        return output[0] if len(output) == 1 else output

    @staticmethod
    def subsample_classes(*args, subsample="all"):
        """Keep the base (first ceil(n/2) sorted labels of args[0]) or new half, relabelled 0..m-1."""
        if subsample not in SUBSAMPLE_CHOICES:
            raise DataError(
                f'DATASET.SUBSAMPLE_CLASSES must be one of {", ".join(SUBSAMPLE_CHOICES)}; got "{subsample}".'
            )
        if subsample == "all":
            return args
        labels = sorted({d.label for d in args[0]})
        m = math.ceil(len(labels) / 2)
        logger.info(f"SUBSAMPLE {subsample.upper()} CLASSES!")
        selected = labels[:m] if subsample == "base" else labels[m:]
        relabeler = {y: y_new for y_new, y in enumerate(selected)}
        return [
            [
                Datum(impath=d.impath, label=relabeler[d.label], domain=d.domain, classname=d.classname)
                for d in items
                if d.label in relabeler
            ]
            for items in args
        ]


def fewshot_and_subsample(cfg, dataset_dir, train, val, test, rng):
    """Steps 3-4 of docs/reference-behaviour.md, "Dataset pipeline": the cached few-shot draw, then the base/new
    class split.

    `val=None` means the dataset has no val split of its own (ImageNet): only train is drawn, and
    the returned val is None for the caller to replace.
    """
    num_shots = cfg.DATASET.NUM_SHOTS
    train, val = fewshot.fewshot_split(dataset_dir, train, val, num_shots, cfg.SEED, rng)
    subsample = cfg.DATASET.SUBSAMPLE_CLASSES
    if val is None:
        train, test = DatasetBase.subsample_classes(train, test, subsample=subsample)
    else:
        train, val, test = DatasetBase.subsample_classes(train, val, test, subsample=subsample)
    return train, val, test
