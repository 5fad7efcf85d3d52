"""Put the benchmarks in place (prepare_data.py): fetch what torchvision downloads and verifies into a
cache and link its folders into the layout the readers expect; sort ImageNet's validation images into
class folders with the official devkit's labels and write classnames.txt; for everything else say
exactly what to download, from where, and where it goes.

Every step is resumable: what is already in place is left alone, so a second run does nothing and an
interrupted one continues.
"""

import io
import logging
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field

from tqdm import tqdm

from dasslite.errors import DataError, UserFileNotFoundError
from dasslite.utils.io import atomic_write

from .catalog import IMAGENET_SITE, benchmark

logger = logging.getLogger(__name__)

DEVKIT_META = "data/meta.mat"
DEVKIT_VAL_LABELS = "data/ILSVRC2012_validation_ground_truth.txt"
VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG$", re.IGNORECASE)


@dataclass
class Preparation:
    """What prepare_dataset did (`done`) and what is left to the user (`todo`: download X from Y into Z)."""

    name: str
    done: list = field(default_factory=list)
    todo: list = field(default_factory=list)


def default_cache(root):
    return os.path.join(root, "torchvision-downloads")


def prepare_dataset(root, name, cache=None, devkit=None):
    """Prepare one benchmark under the data root `root`; returns a Preparation."""
    b = benchmark(name)
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise UserFileNotFoundError(f'Data root "{root}" is not a folder: create it first (mkdir -p "{root}").')
    folder = os.path.join(root, b.folder)
    prep = Preparation(b.name)
    if b.torchvision:
        cache = os.path.abspath(os.path.expanduser(cache or default_cache(root)))
        fetch_with_torchvision(b, cache, prep)
        prep.done += link_layout(b.torchvision, cache, folder)
    elif b.name == "ImageNet":
        prepare_imagenet(folder, devkit, prep)
    elif b.name.startswith("ImageNet"):
        copy_classnames(root, folder, prep)
    prep.todo += manual_downloads(b, folder)
    return prep


# ---- torchvision ----------------------------------------------------------------------------------


def fetch_with_torchvision(b, cache, prep):
    """torchvision downloads, verifies (md5) and extracts the dataset into `cache`, with progress bars;
    skipped when its folders are already there (a finished or earlier download)."""
    source = b.torchvision
    if all(os.path.exists(os.path.join(cache, src)) for src, _ in source.links):
        prep.done.append(f"torchvision's {source.cls} is already in {cache}")
        return
    import torchvision.datasets

    logger.info(f"Downloading {b.name} with torchvision.datasets.{source.cls} into {cache}")
    os.makedirs(cache, exist_ok=True)
    try:
        getattr(torchvision.datasets, source.cls)(root=cache, download=True, **source.kwargs)
    except (OSError, RuntimeError, ValueError) as e:  # no network, a dead link, a checksum mismatch
        raise DataError(
            f"torchvision could not download {b.name} into {cache}: {e}. Run again to retry (finished files "
            f"are kept), or fetch it by hand as DATASETS.md#{b.anchor} describes."
        ) from e
    prep.done.append(f"downloaded {b.name} with torchvision.datasets.{source.cls} into {cache}")


def link_layout(source, cache, folder):
    """Link each of torchvision's folders and files into the dataset folder (relative links, so the data
    root and the cache can move together); what is already there is kept. Returns what was done."""
    done = []
    os.makedirs(folder, exist_ok=True)
    for src, dst in source.links:
        src_path, dst_path = os.path.join(cache, src), os.path.join(folder, dst)
        if not os.path.exists(src_path):
            raise DataError(
                f"{src_path} is missing from torchvision's {source.cls} download in {cache}: the download is "
                f"incomplete. Delete {os.path.join(cache, src.split('/')[0])} and run again."
            )
        if os.path.lexists(dst_path):
            if os.path.realpath(dst_path) != os.path.realpath(src_path):
                logger.warning(f"Kept {dst_path}: it is already there (not replaced by {src_path})")
            continue
        os.makedirs(os.path.dirname(dst_path), exist_ok=True)
        try:
            os.symlink(os.path.relpath(src_path, os.path.dirname(dst_path)), dst_path)
        except OSError as e:  # e.g. a filesystem without symbolic links
            raise DataError(f"Cannot link {dst_path} to {src_path} ({e}): move or copy it there instead") from e
        done.append(f"linked {dst_path} -> {src_path}")
    return done


# ---- ImageNet -------------------------------------------------------------------------------------


def prepare_imagenet(folder, devkit, prep):
    val_dir = os.path.join(folder, "images", "val")
    val_wnids = read_devkit_val_wnids(devkit) if devkit else None
    if val_wnids is not None:
        if not os.path.isdir(val_dir):
            raise UserFileNotFoundError(
                f"{val_dir} is missing: extract ILSVRC2012_img_val.tar there first, then run this again."
            )
        moved = sort_val_into_class_folders(val_dir, val_wnids)
        if moved:
            prep.done.append(f"sorted {moved:,} validation images of {val_dir} into class folders")
    elif os.path.isdir(val_dir) and any(e.is_file() for e in os.scandir(val_dir)):
        prep.todo.append(
            f"{val_dir} holds images outside class folders: pass --devkit ILSVRC2012_devkit_t12.tar.gz (the "
            f"official devkit, {IMAGENET_SITE}) to sort them by its labels"
        )
    write_imagenet_classnames(folder, val_wnids, prep)


def read_devkit_val_wnids(devkit):
    """The wnid of each validation image (ILSVRC2012_val_00000001 first) from the official devkit, the
    ILSVRC2012_devkit_t12.tar.gz archive or its extracted folder: data/meta.mat maps ILSVRC2012_ID to
    wnid, data/ILSVRC2012_validation_ground_truth.txt holds one ID per image."""
    from scipy.io import loadmat

    meta, truth = _devkit_files(devkit)
    synsets = loadmat(io.BytesIO(meta), squeeze_me=True)["synsets"]
    id2wnid = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    ids = [int(token) for token in truth.decode().split()]
    unknown = sorted(set(ids) - set(id2wnid))
    if unknown:
        raise DataError(f"{devkit}: the validation labels name classes {unknown[:5]} that meta.mat lacks")
    return [id2wnid[i] for i in ids]


def _devkit_files(devkit):
    """(meta.mat, ground truth) bytes, read in memory from the archive (nothing is extracted) or folder."""
    wanted = (DEVKIT_META, DEVKIT_VAL_LABELS)
    if os.path.isdir(devkit):
        found = {}
        for base in (devkit, os.path.join(devkit, "ILSVRC2012_devkit_t12")):
            for rel in wanted:
                if os.path.isfile(os.path.join(base, rel)) and rel not in found:
                    with open(os.path.join(base, rel), "rb") as f:
                        found[rel] = f.read()
    elif os.path.isfile(devkit) and tarfile.is_tarfile(devkit):
        with tarfile.open(devkit) as tar:
            found = {
                rel: tar.extractfile(m).read()
                for m in tar.getmembers()
                for rel in wanted
                if m.isfile() and (m.name == rel or m.name.endswith("/" + rel))
            }
    else:
        raise UserFileNotFoundError(
            f'--devkit "{devkit}": not the ILSVRC2012_devkit_t12.tar.gz archive or its extracted folder'
        )
    missing = [rel for rel in wanted if rel not in found]
    if missing:
        raise DataError(f"--devkit {devkit} lacks {', '.join(missing)}: is it the ILSVRC 2012 devkit?")
    return found[DEVKIT_META], found[DEVKIT_VAL_LABELS]


def sort_val_into_class_folders(val_dir, val_wnids):
    """Move each image val_dir/ILSVRC2012_val_<n>.JPEG into val_dir/<wnid of image n>/. Images already in
    a class folder are left alone, so an interrupted run continues. Returns how many were moved."""
    flat = sorted(e.name for e in os.scandir(val_dir) if e.is_file() and not e.name.startswith("."))
    numbers = {name: VAL_NAME.match(name) for name in flat}
    odd = [n for n, m in numbers.items() if not m or not 1 <= int(m.group(1)) <= len(val_wnids)]
    if odd:
        raise DataError(
            f"{len(odd)} files of {val_dir} are not ILSVRC2012 validation images numbered 1..{len(val_wnids)} "
            f"(e.g. {', '.join(odd[:3])}); move them out and run again"
        )
    for name in tqdm(flat, desc="sort ImageNet val", disable=not flat):
        wnid = val_wnids[int(numbers[name].group(1)) - 1]
        os.makedirs(os.path.join(val_dir, wnid), exist_ok=True)
        os.replace(os.path.join(val_dir, name), os.path.join(val_dir, wnid, name))
    return len(flat)


def write_imagenet_classnames(folder, val_wnids, prep):
    """classnames.txt, `<wnid> <name>` in sorted wnid order (the labels), with CLIP's ImageNet class
    names (open_clip's copy of CLIP's notebook, where the original file's names come from). An existing
    file is kept."""
    path = os.path.join(folder, "classnames.txt")
    if os.path.exists(path):
        return
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    train_dir = os.path.join(folder, "images", "train")
    wnids = sorted(set(val_wnids)) if val_wnids else _wnid_folders(train_dir)
    if len(wnids) != len(IMAGENET_CLASSNAMES):
        prep.todo.append(
            f"{path}: found {len(wnids)} wnids (in {train_dir} or the devkit), not {len(IMAGENET_CLASSNAMES)}: "
            f"extract the training set first (or pass --devkit), then run this again"
        )
        return
    os.makedirs(folder, exist_ok=True)
    with atomic_write(path) as f:
        f.write("".join(f"{w} {n}\n" for w, n in zip(wnids, IMAGENET_CLASSNAMES)))
    prep.done.append(f"wrote {path} (CLIP's ImageNet class names)")


def _wnid_folders(path):
    if not os.path.isdir(path):
        return []
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and re.fullmatch(r"n\d{8}", e.name))


def copy_classnames(root, folder, prep):
    """The ImageNet variants read classnames.txt from their own folder: a copy of imagenet/'s."""
    source, path = os.path.join(root, "imagenet", "classnames.txt"), os.path.join(folder, "classnames.txt")
    if os.path.exists(path) or not os.path.isdir(folder):
        return
    if not os.path.isfile(source):  # manual_downloads says what to do
        return
    with open(source, "rb") as src, atomic_write(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    prep.done.append(f"copied {source} to {path}")


# ---- what no library fetches ----------------------------------------------------------------------


def manual_downloads(b, folder):
    """`what: url -> where` for each file the user must fetch that is not in place yet."""
    todo = []
    split_file = getattr(b.cls, "split_file", "")
    if b.split_url and not os.path.exists(os.path.join(folder, split_file)):
        todo.append(f"{split_file} (the published split): {b.split_url} -> {folder}/")
    for d in b.downloads:
        if not os.path.exists(os.path.join(folder, d.provides)):
            where = os.path.join(folder, d.where) if d.where else folder
            todo.append(f"{d.what}: {d.url} -> {where}/" if d.url else f"{d.what} -> {where}/")
    return todo
