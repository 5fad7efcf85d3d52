"""Few-shot sampling (the reference's algorithm, on a passed RNG) and its JSON cache.

The draw is Dassl's `generate_fewshot_dataset`: group by label in first-appearance order, then
`rng.sample(items, K)` per class (all items when a class has fewer than K). With
`rng = random.Random(SEED)` this makes exactly the picks of the reference, which used the global
`random` after `random.seed(SEED)` (docs/reference-behaviour.md, "Few-shot draw").

The cache replaces the reference's `split_fewshot/shot_{K}-seed_{S}.pkl`: JSON with paths relative
to the dataset folder, stamped with a hash of the lists it was drawn from and a sampler version, so
a cache made from another split (or by another sampler) is redrawn instead of trusted; so is one
that is not a K-shot draw from the current lists (cut short, edited, wrong types). Concurrent first
runs: the first cache written wins and every run uses it. Pickles are
never loaded: unpickling can run code, and the reference's hold absolute paths of another machine.
"""

import hashlib
import json
import logging
import os
from collections import Counter, OrderedDict

from ..utils.io import atomic_write, read_json
from ..utils.logger import FILE_ONLY
from .datum import Datum
from .splits import warn_unwritable

logger = logging.getLogger(__name__)

# Bump when the sampling changes, so that caches drawn by the old sampler are redrawn.
SAMPLER_VERSION = 1
VAL_MAX_SHOTS = 4  # the reference's val subset: min(K, 4) per class


def split_dataset_by_label(data_source):
    """label -> list of Datum, in first-appearance order (the order the reference samples in)."""
    output = OrderedDict()
    for item in data_source:
        output.setdefault(item.label, []).append(item)
    return output


def sample_fewshot(data_source, num_shots, rng, repeat=False, report=True):
    """K items per class of one list; `num_shots < 1` returns the list unchanged.

    A class with fewer than K items keeps them all (the reference's rule), reported in one notice
    unless `report=False` (the caller reports several draws together).
    """
    if num_shots < 1:
        return data_source
    dataset = []
    for items in split_dataset_by_label(data_source).values():
        if len(items) >= num_shots:
            dataset.extend(rng.sample(items, num_shots))
        elif repeat:
            dataset.extend(rng.choices(items, k=num_shots))
        else:
            dataset.extend(items)
    if report:
        report_shortfall({"": (num_shots, dataset)}, data_source)
    return dataset


def report_shortfall(draws, source, listed=5):
    """One notice for the classes with fewer images than the shots asked for: how many (of the classes
    of `source`), the first `listed` names, and (in log.txt) every count.

    `draws`: {split name: (shots asked, the items drawn)}.
    """
    short = {split: (k, _short_classes(items, k)) for split, (k, items) in draws.items()}
    names = dict(sorted({y: name for _, classes in short.values() for y, (name, _) in classes.items()}.items()))
    if not names:
        return
    asked = " / ".join(f"{k} {split}".rstrip() for split, (k, classes) in short.items() if classes)
    listing = ", ".join(list(names.values())[:listed]) + (
        f" and {len(names) - listed} more" if len(names) > listed else ""
    )
    logger.warning(
        f"Few-shot: {len(names)} of {len({d.label for d in source})} classes have fewer images than the shots "
        f"asked for ({asked}), so all their images are used: {listing} (counts per class in log.txt)"
    )
    counts = "; ".join(
        f"{name} (label {y}): "
        + ", ".join(f"{split} {classes[y][1]}/{k}".lstrip() for split, (k, classes) in short.items() if y in classes)
        for y, name in names.items()
    )
    logger.info(f"Few-shot: images / shots asked, per class short of shots: {counts}", extra=FILE_ONLY)


def _short_classes(items, num_shots):
    """{label: (class name, number of items)} of the classes with fewer than `num_shots` items."""
    counts, names = Counter(d.label for d in items), {d.label: d.classname for d in items}
    return {y: (names[y], n) for y, n in counts.items() if n < num_shots}


def _relpath(path, dataset_dir, prefix):
    # Slicing off the prefix is ~10x faster than os.path.relpath, which matters for ImageNet's 1.3M.
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, dataset_dir)


def _records(items, dataset_dir):
    prefix = os.path.join(dataset_dir, "")
    return [[_relpath(d.impath, dataset_dir, prefix), d.label, d.classname] for d in items]


def _datums(records, dataset_dir):
    return [Datum(impath=os.path.join(dataset_dir, p), label=int(y), classname=c) for p, y, c in records]


def source_hash(dataset_dir, train, val=None):
    """SHA-256 of the lists a draw is made from (relative path, label, class name, in order).

    For datasets with a split file this is a function of that file; unlike a hash of the file it
    also covers the datasets listed from folders (ImageNet, FGVCAircraft, ImageFolder).
    """
    h = hashlib.sha256()
    prefix = os.path.join(dataset_dir, "")
    for name, items in (("train", train), ("val", val or [])):
        h.update(f"{name}\n".encode())
        for d in items:  # streamed: no copy of ImageNet's whole list in memory
            line = f"{_relpath(d.impath, dataset_dir, prefix)}\t{d.label}\t{d.classname}\n"
            h.update(line.encode("utf-8", "surrogateescape"))  # a file name that is not UTF-8: its own bytes
    return h.hexdigest()


def cache_path(dataset_dir, num_shots, seed):
    return os.path.join(dataset_dir, "split_fewshot", f"shot_{num_shots}-seed_{seed}.json")


def _malformed(records):
    """Why `records` is not a list of [relative_path, label, classname], or None."""
    ok = isinstance(records, list) and all(
        isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and type(r[1]) is int and isinstance(r[2], str)
        for r in records
    )
    return None if ok else "its entries are not [relative_path, label, classname] lists"


def _check_draw(records, source, num_shots, dataset_dir):
    """Why `records` is not a K-shot draw from `source` (type, membership, per-class counts), or None."""
    problem = _malformed(records)
    if problem:
        return problem
    wanted = {tuple(r) for r in records}
    if len(wanted) != len(records):
        return "it names an image twice"
    prefix = os.path.join(dataset_dir, "")
    sizes, found = Counter(), set()
    for d in source:  # streamed: the cache is small, the source may be ImageNet's 1.3M
        sizes[d.label] += 1
        key = (_relpath(d.impath, dataset_dir, prefix), d.label, d.classname)
        if key in wanted:
            found.add(key)
    if len(found) != len(records):
        return f"{len(records) - len(found)} of its {len(records)} images are not in the current split"
    counts = Counter(r[1] for r in records)
    wrong = [y for y in sizes if counts[y] != min(num_shots, sizes[y])]
    if wrong:
        y = wrong[0]
        return (
            f"{len(wrong)} class(es) have the wrong number of images, e.g. label {y}: {counts[y]} instead "
            f"of {min(num_shots, sizes[y])}"
        )
    return None


def load_fewshot_cache(path, dataset_dir, expected_hash, source=None, num_shots=None):
    """(train, val) from a valid cache, or None when absent, unreadable or stale.

    `source=(train, val)` and `num_shots`: the cache must also be what a K-shot draw from those
    lists gives (min(K, 4) for val), or it is redrawn with a warning; a cache cut short, padded or
    edited is not trusted because its stamps still match.
    """
    pkl = os.path.splitext(path)[0] + ".pkl"
    if os.path.exists(pkl):
        logger.info(f"Ignoring {pkl}: pickle caches are never loaded (the JSON cache replaces it)")
    if not os.path.exists(path):
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        logger.warning(f"Few-shot cache {path} is unreadable ({e}): redrawing it")
        return None
    problem = _check_cache(data, expected_hash, source, num_shots, dataset_dir)
    if problem:
        logger.warning(f"Few-shot cache {path} is not the draw from the current split ({problem}): redrawing it")
        return None
    logger.info(f"Loading preprocessed few-shot data from {path}")
    train = _datums(data["train"], dataset_dir)
    val = None if data.get("val") is None else _datums(data["val"], dataset_dir)
    return train, val


def _check_cache(data, expected_hash, source, num_shots, dataset_dir):
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if data.get("sampler_version") != SAMPLER_VERSION or data.get("source_sha256") != expected_hash:
        return "drawn from another split or by another sampler"
    if source is None:  # stamps and types only
        return _malformed(data.get("train")) or (data.get("val") is not None and _malformed(data.get("val"))) or None
    src_train, src_val = source
    if data.get("num_shots") != num_shots:
        return f"it holds {data.get('num_shots')!r} shots, not {num_shots}"
    if (data.get("val") is None) != (src_val is None):
        return "its val list does not match the dataset's"
    problem = _check_draw(data.get("train"), src_train, num_shots, dataset_dir)
    if problem is None and src_val is not None:
        problem = _check_draw(data.get("val"), src_val, min(num_shots, VAL_MAX_SHOTS), dataset_dir)
    return problem


def save_fewshot_cache(path, dataset_dir, expected_hash, num_shots, seed, train, val, exclusive=False):
    """Write atomically, so concurrent runs and readers only ever see a whole file.

    `exclusive=True` (a first draw): when another run wrote the file first, FileExistsError is
    raised and the file is kept, for the caller to use. A read-only dataset folder only costs the
    cache, not the run.
    """
    data = {
        "sampler_version": SAMPLER_VERSION,
        "source_sha256": expected_hash,
        "num_shots": num_shots,
        "seed": seed,
        "train": _records(train, dataset_dir),
        "val": None if val is None else _records(val, dataset_dir),
    }
    logger.info(f"Saving preprocessed few-shot data to {path}")
    try:
        with atomic_write(path, exclusive=exclusive) as f:
            json.dump(data, f, indent=1)
    except FileExistsError:
        raise
    except OSError as e:
        warn_unwritable(dataset_dir, path, e)


def fewshot_split(dataset_dir, train, val, num_shots, seed, rng):
    """Step 3 of docs/reference-behaviour.md, "Dataset pipeline": K-shot train and min(K, 4)-shot val, cached
    per (K, seed, split).

    `val=None` (ImageNet, whose val is its test set) draws and caches only train. A negative seed
    means "unseeded": such draws are not cached, or a later unseeded run would silently reuse them.
    """
    if num_shots < 1:
        return train, val
    seed = -1 if seed is None else seed
    path = cache_path(dataset_dir, num_shots, seed)
    expected = source_hash(dataset_dir, train, val)
    stale = os.path.exists(path)  # if not used below: invalid, so replaced rather than kept
    if seed >= 0:
        cached = load_fewshot_cache(path, dataset_dir, expected, (train, val), num_shots)
        if cached is not None:
            return _reported(cached, num_shots, train)
    logger.info(f"Creating a {num_shots}-shot dataset")
    source = (train, val)
    train = sample_fewshot(train, num_shots, rng, report=False)
    if val is not None:
        val = sample_fewshot(val, min(num_shots, VAL_MAX_SHOTS), rng, report=False)
    if seed < 0:
        logger.info("SEED < 0: the few-shot draw is not cached")
        return _reported((train, val), num_shots, source[0])
    return _reported(
        _publish(path, dataset_dir, expected, num_shots, seed, train, val, source, stale), num_shots, source[0]
    )


def _reported(draw, num_shots, source):
    """The (train, val) draw, once its shortfall is reported: on every run, from the cache too."""
    train, val = draw
    draws = {"train": (num_shots, train)}
    if val is not None:
        draws["val"] = (min(num_shots, VAL_MAX_SHOTS), val)
    report_shortfall(draws, source)
    return draw


def _publish(path, dataset_dir, expected, num_shots, seed, train, val, source, stale):
    """Save a new draw; when another run saved one first, use the file on disk, as later runs will."""
    try:
        save_fewshot_cache(path, dataset_dir, expected, num_shots, seed, train, val, exclusive=not stale)
    except FileExistsError:
        cached = load_fewshot_cache(path, dataset_dir, expected, source, num_shots)
        if cached is not None:
            logger.info(f"Another run wrote {path} first: using its draw")
            return cached
    return train, val
