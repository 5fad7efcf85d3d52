"""Split files (`split_zhou_<Name>.json`) and the reference's ways of making a split.

JSON format (docs/reference-behaviour.md, "Split files"): {"train": [[rel_path, label, classname], ...], "val":
[...], "test": [...]}, paths relative to the dataset's image folder. Every random choice uses the `rng` passed
in, never the global `random`, so the caller controls (and reproduces) the reference's stream.
"""

import logging
import os
from collections import OrderedDict

from ..errors import DataError, UserFileNotFoundError
from ..utils.io import read_json, write_json
from .datum import Datum

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MAX_LISTED = 5  # missing files named in an error
_WARNED_UNWRITABLE = set()  # dataset folders already warned about in this process


def warn_unwritable(folder, path, exc):
    """One warning per folder and process: what could not be saved there is kept in memory."""
    folder = os.path.abspath(folder)
    if folder in _WARNED_UNWRITABLE:
        logger.info(f"Not saved (the folder is not writable): {path}")
        return
    _WARNED_UNWRITABLE.add(folder)
    logger.warning(
        f"Cannot write {path} ({exc}): the dataset folder {folder} is not writable, so its split and "
        f"few-shot draw are kept in memory for this run only. Runs with another seed may make another "
        f"split: make the folder writable or put the published split file in it to fix the split."
    )


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
        raise UserFileNotFoundError(
            f"{len(missing)} of the {len(items)} images named by {source} do not exist, e.g.:\n  {listed}{more}\n{fix}"
        )


class SplitFileError(DataError):
    """A split file that cannot be trusted: names the file, the split and the entry at fault."""


def _bad_split(filepath, what, fix=None):
    fix = fix or ("Delete the file to regenerate it from the annotation files, or download it again (see DATASETS.md).")
    return SplitFileError(f"Split file {filepath}: {what}. {fix}")


def _check_record(filepath, name, index, record, label2name, name2label, num_classes):
    """One [relative_path, label, classname] entry: well-formed, inside the folder, label consistent."""
    where = f'entry {index} of "{name}"'
    if not (isinstance(record, list) and len(record) == 3):
        raise _bad_split(filepath, f"{where} is {record!r}, not [relative_path, label, classname]")
    path, label, classname = record
    if not isinstance(path, str) or not path or not isinstance(classname, str):
        raise _bad_split(filepath, f"{where} is {record!r}: the path and the class name must be strings")
    parts = path.replace("\\", "/").split("/")
    if os.path.isabs(path) or path.startswith(("/", "\\")) or path[1:2] == ":" or ".." in parts:
        raise _bad_split(
            filepath,
            f'{where} names the image "{path}", outside the dataset folder (an absolute path or "..")',
            "Split files hold paths relative to the dataset's image folder; delete the file to "
            "regenerate it, or download it again (see DATASETS.md).",
        )
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < num_classes:
        raise _bad_split(
            filepath, f'{where} ("{path}") has the label {label!r}; the labels must be 0..{num_classes - 1}'
        )
    if label2name.setdefault(label, classname) != classname:
        raise _bad_split(
            filepath,
            f'{where} ("{path}") has the label {label} with the class name "{classname}", but label '
            f'{label} is "{label2name[label]}" elsewhere in the file',
        )
    if name2label.setdefault(classname, label) != label:
        raise _bad_split(
            filepath,
            f'{where} ("{path}") gives the class "{classname}" the label {label}, but it has the '
            f"label {name2label[classname]} elsewhere in the file",
        )


def check_split_records(split, filepath):
    """Every entry of a loaded split: [path inside the folder, label in 0..K-1, its one class name].

    K is the number of class names in the file, so a label no class has (a test label 99 with 37
    classes) is refused instead of being scored as a wrong prediction.
    """
    if not isinstance(split, dict) or any(not isinstance(split.get(name), list) for name in SPLITS):
        raise _bad_split(filepath, 'it must be a JSON object with "train", "val" and "test" lists')
    num_classes = len(
        {r[2] for name in SPLITS for r in split[name] if isinstance(r, list) and len(r) == 3 and isinstance(r[2], str)}
    )
    label2name, name2label = {}, {}
    for name in SPLITS:
        for index, record in enumerate(split[name]):
            _check_record(filepath, name, index, record, label2name, name2label, num_classes)


def read_split(filepath, path_prefix):
    """(train, val, test) lists of Datum from a split file, after checking every entry and image."""
    logger.info(f"Reading split from {filepath}")
    try:
        split = read_json(filepath)
    except ValueError as e:
        raise _bad_split(filepath, f"not valid JSON ({e})") from e
    check_split_records(split, filepath)
    lists = [
        [Datum(impath=os.path.join(path_prefix, p), label=y, classname=c) for p, y, c in split[name]] for name in SPLITS
    ]
    check_images_exist(
        [d for items in lists for d in items],
        filepath,
        f"The split file expects the images under {path_prefix}. Check that folder against the "
        f"layout in DATASETS.md (a wrong DATASET.ROOT or an incomplete extraction are the usual causes).",
    )
    return tuple(lists)


def save_split(train, val, test, filepath, path_prefix, exclusive=False):
    """Write a split file atomically, paths relative to `path_prefix` (indent 4, as the reference).

    `exclusive=True`: FileExistsError when another process wrote the file first (it is kept).
    """

    def _extract(items):
        return [[os.path.relpath(d.impath, path_prefix), d.label, d.classname] for d in items]

    split = {name: _extract(items) for name, items in zip(SPLITS, (train, val, test))}
    write_json(split, filepath, exclusive=exclusive)
    logger.info(f"Saved split to {filepath}")


def read_or_make_split(filepath, path_prefix, make_split):
    """Read `filepath` if present; else `make_split()` -> (train, val, test), check, and save it.

    When several first runs make the split at once, the first file written wins and every run
    uses that file, so all of them (and every later run) train on one split. A folder that cannot
    be written keeps the split in memory, with one warning.
    """
    if os.path.exists(filepath):
        return read_split(filepath, path_prefix)
    train, val, test = make_split()
    check_images_exist(
        train + val + test,
        "the annotation files",
        f"Check the image folder {path_prefix} against the layout in DATASETS.md.",
    )
    try:
        save_split(train, val, test, filepath, path_prefix, exclusive=True)
    except FileExistsError:
        logger.info(f"Another run wrote {filepath} first: using it")
        return read_split(filepath, path_prefix)
    except OSError as e:
        warn_unwritable(os.path.dirname(filepath), filepath, e)
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
            raise DataError(
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
            raise DataError(
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
