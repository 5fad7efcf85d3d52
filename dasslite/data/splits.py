"""Split files (`split_zhou_<Name>.json`) and the reference's ways of making a split.

JSON format (docs/reference-behaviour.md, "Split files"): {"train": [[rel_path, label, classname], ...], "val":
[...], "test": [...]}, paths relative to the dataset's image folder. Every random choice uses the `rng` passed
in, never the global `random`, so the caller controls (and reproduces) the reference's stream.
"""

import logging
import os
from collections import OrderedDict

from ..utils.io import read_json, write_json
from .datum import Datum

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MAX_LISTED = 5  # missing files named in an error


def listdir_nohidden(path, sort=True):
    """Non-hidden entries of `path`; sorted by default so listings agree on every filesystem."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def check_images_exist(items, source, fix):
    """One error for all missing images: their count, the first few paths, and what to do."""
    missing = [d.impath for d in items if not os.path.isfile(d.impath)]
    if missing:
        listed = "\n  ".join(missing[:MAX_LISTED])
        more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise FileNotFoundError(
            f"{len(missing)} of the {len(items)} images named by {source} do not exist, e.g.:\n  {listed}{more}\n{fix}"
        )


def read_split(filepath, path_prefix):
    """(train, val, test) lists of Datum from a split file, after checking every image exists."""
    logger.info(f"Reading split from {filepath}")
    try:
        split = read_json(filepath)
        lists = [
            [Datum(impath=os.path.join(path_prefix, p), label=int(y), classname=c) for p, y, c in split[name]]
            for name in SPLITS
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"Split file {filepath} is not a valid split ({type(e).__name__}: {e}). It must hold "
            f'"train", "val" and "test" lists of [relative_path, label, classname]; delete it to '
            f"regenerate it from the annotation files, or download it again (see DATASETS.md)."
        ) from e
    check_images_exist(
        [d for items in lists for d in items],
        filepath,
        f"The split file expects the images under {path_prefix}. Check that folder against the "
        f"layout in DATASETS.md (a wrong DATASET.ROOT or an incomplete extraction are the usual causes).",
    )
    return tuple(lists)


def save_split(train, val, test, filepath, path_prefix):
    """Write a split file atomically, paths relative to `path_prefix` (indent 4, as the reference)."""

    def _extract(items):
        return [[os.path.relpath(d.impath, path_prefix), d.label, d.classname] for d in items]

    write_json({name: _extract(items) for name, items in zip(SPLITS, (train, val, test))}, filepath)
    logger.info(f"Saved split to {filepath}")


def read_or_make_split(filepath, path_prefix, make_split):
    """Read `filepath` if present; else `make_split()` -> (train, val, test), check, and save it."""
    if os.path.exists(filepath):
        return read_split(filepath, path_prefix)
    train, val, test = make_split()
    check_images_exist(
        train + val + test,
        "the annotation files",
        f"Check the image folder {path_prefix} against the layout in DATASETS.md.",
    )
    save_split(train, val, test, filepath, path_prefix)
    return train, val, test


def split_trainval(trainval, p_val=0.2, *, rng):
    """Per label (first-appearance order): shuffle, first round(p_val*n) -> val, rest -> train."""
    logger.info(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    tracker = OrderedDict()
    for idx, item in enumerate(trainval):
        tracker.setdefault(item.label, []).append(idx)
    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise ValueError(
                f'Class "{trainval[idxs[0]].classname}" (label {label}) has {len(idxs)} training '
                f"image(s): too few to hold out {p_val:.0%} of them for validation."
            )
        rng.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None, *, rng):
    """The reference's DTD-style split of image_dir/<class>/* (labels = sorted folder order).

    Deliberate difference: the reference shuffles each class's unsorted `os.listdir` output, so
    the generated split depends on the filesystem; we sort first. Users normally read the
    published split files instead, which this does not affect.
    """
    # Folders only: a stray file (a README) would otherwise become a class.
    categories = [
        c for c in listdir_nohidden(image_dir) if c not in ignored and os.path.isdir(os.path.join(image_dir, c))
    ]
    logger.info(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")
    train, val, test = [], [], []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        images = [os.path.join(category_dir, im) for im in listdir_nohidden(category_dir)]
        rng.shuffle(images)
        n_train, n_val = round(len(images) * p_trn), round(len(images) * p_val)
        if n_train <= 0 or n_val <= 0 or len(images) - n_train - n_val <= 0:
            raise ValueError(
                f"{category_dir} has {len(images)} image(s): too few for a "
                f"{p_trn:.0%}/{p_val:.0%}/{1 - p_trn - p_val:.0%} train/val/test split."
            )
        cname = (new_cnames or {}).get(category, category)

        def _collate(ims, label=label, cname=cname):
            return [Datum(impath=im, label=label, classname=cname) for im in ims]

        train.extend(_collate(images[:n_train]))
        val.extend(_collate(images[n_train : n_train + n_val]))
        test.extend(_collate(images[n_train + n_val :]))
    return train, val, test
