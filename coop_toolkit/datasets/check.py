"""Check a data root against the fifteen benchmarks' layouts: what is found, missing or incomplete, and
the fix for each known mistake, all at once (check_data.py; train.py runs it for its one dataset).

Fast by default: the split files and annotation files are read and every image they name is looked
up (file stats only); `decode=True` also opens every image. Nothing is written.
"""

import hashlib
import logging
import os
import random
from dataclasses import dataclass, field

from tabulate import tabulate

from dasslite.config import get_cfg_default
from dasslite.data.benchmark import SplitDataset
from dasslite.data.images import unreadable_images
from dasslite.data.splits import SPLITS, check_split_records
from dasslite.errors import DataError, UserError
from dasslite.utils.io import read_json

from .catalog import BENCHMARKS, CLASSNAMES, EXTRACT_IN_ROOT, benchmark

logger = logging.getLogger(__name__)

FOUND, MISSING, INCOMPLETE = "found", "missing", "incomplete"
LISTED = 5  # missing or unreadable files named in a report
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
CHECKSUMS_UNKNOWN = (
    "The published split files' checksums are not recorded in this toolkit: each split file's structure "
    "(entries, labels, class names) and sizes were checked instead."
)


@dataclass
class Problem:
    """Something that makes the dataset unusable, and what to do about it."""

    what: str
    fix: str


@dataclass
class Report:
    """The check of one benchmark. `found[split]`: images of the split that exist; `reference`: the
    published (train, val, test) sizes, None where the dataset has no such split."""

    name: str
    folder: str
    reference: tuple
    status: str = FOUND
    found: dict = field(default_factory=dict)
    listed: dict = field(default_factory=dict)  # images each split names (split file or annotation files)
    num_classes: int | None = None
    split_file: str = ""  # one-word state for the table
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    bad_files: list = field(default_factory=list)  # the first LISTED missing or unreadable files
    n_bad: int = 0

    @property
    def usable(self):
        return self.status == FOUND

    def fail(self, what, fix):
        self.problems.append(Problem(what, fix))
        if self.status == FOUND:
            self.status = INCOMPLETE


class _Unusable(Exception):
    """Raised once a report holds the problem that stops the check of its dataset."""


def check_datasets(root, names=None, decode=False, num_workers=0):
    """Check each benchmark named (config name, DATASET.NAME or paper name; default: all fifteen) under
    the data root `root`; returns one Report per dataset, in the order given (default: the papers')."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise DataError(f'Data root "{root}" is not a folder: pass the folder that holds every dataset.')
    chosen = [benchmark(n) for n in names] if names else list(BENCHMARKS.values())
    return [check_dataset(root, b.name, decode=decode, num_workers=num_workers) for b in chosen]


def check_dataset(root, name, decode=False, num_workers=0):
    """The Report of one benchmark under the data root `root`."""
    b = benchmark(name)
    root = os.path.abspath(os.path.expanduser(root))
    folder = os.path.join(root, b.folder)
    report = Report(b.name, folder, b.sizes)
    if not os.path.isdir(folder):
        report.status = MISSING
        report.problems.append(_missing_folder(root, b, folder))
        return report
    try:
        splits, verify = _read_splits(root, b, folder, report)
    except _Unusable:
        return report
    _count(report, b, splits, verify)
    if decode:
        _decode(report, splits, num_workers)
    return report


def _read_splits(root, b, folder, report):
    """{split: [(image path, label), ...]} and whether the paths still need a stat (they came from a
    list rather than a folder listing)."""
    if issubclass(b.cls, SplitDataset):
        return _split_dataset_items(root, b, folder, report), True
    return _listed_items(root, b, folder, report), False


def _split_dataset_items(root, b, folder, report):
    reader = b.cls.reader(folder)
    if b.cls.image_subdir and not os.path.isdir(reader.image_dir):
        report.fail(*_diagnose_absent(root, b, folder, b.cls.image_subdir, "image folder"))
        raise _Unusable
    split_path = os.path.join(folder, b.cls.split_file) if b.cls.split_file else ""
    if split_path and os.path.isfile(split_path):
        return _split_file_items(b, split_path, reader.image_dir, report)
    misplaced = split_path and _find_misplaced(split_path, [root, reader.image_dir])
    if misplaced:  # else the first run would make (and save) another split, silently
        report.split_file = "misplaced"
        report.fail(
            f"{b.cls.split_file} is in {os.path.dirname(misplaced)}, not in {folder}", f'mv "{misplaced}" "{folder}/"'
        )
        raise _Unusable
    if split_path:
        report.split_file = "absent"
        report.notes.append(
            f"{b.cls.split_file} is absent: the first run makes a split from the annotation files (it "
            f"depends on --seed). For numbers comparable with the papers, download the published one from "
            f"{b.split_url} into {folder}/."
        )
    else:
        report.split_file = "official lists"
    try:
        lists = reader.make_split(random.Random(0))
    except (UserError, ValueError, OSError, ImportError, KeyError) as e:
        what = f"{b.cls.split_file} is absent and the files to make it cannot be read: {e}" if split_path else str(e)
        fix = f"download {b.cls.split_file} from {b.split_url} into {folder}/" if split_path else _see(b)
        report.fail(what, fix)
        raise _Unusable from None
    return {s: [(d.impath, d.label) for d in items] for s, items in zip(SPLITS, lists)}


def _split_file_items(b, split_path, image_dir, report):
    fix = f"download it again from {b.split_url} into {os.path.dirname(split_path)}/"
    try:
        split = read_json(split_path)
        check_split_records(split, split_path)
    except ValueError as e:  # not JSON, or a SplitFileError naming the entry at fault
        report.split_file = "broken"
        report.fail(str(e), fix)
        raise _Unusable from None
    report.split_file = "present"
    if b.split_sha256:
        with open(split_path, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == b.split_sha256
        report.split_file = "published" if same else "not published"
        if not same:
            report.notes.append(f"{split_path} is not the published file (its sha256 differs); {fix}")
    return {s: [(os.path.join(image_dir, p), y) for p, y, _ in split[s]] for s in SPLITS}


def _listed_items(root, b, folder, report):
    """ImageNet and its variants: the known mistakes first, then the dataset's own reader (no split file)."""
    report.split_file = "none needed"
    text_file = os.path.join(folder, "classnames.txt")
    if not os.path.isfile(text_file):
        report.fail(f"{text_file} is missing", _classnames_fix(root, b, folder))
    image_dirs = ["images/train", "images/val"] if b.name == "ImageNet" else [b.cls.image_subdir]
    for sub in image_dirs:
        path = os.path.join(folder, sub)
        if not os.path.isdir(path):
            report.fail(*_diagnose_absent(root, b, folder, sub, "image folder"))
        elif not _subfolders(path):
            has_files = any(e.is_file() for e in os.scandir(path))
            report.fail(
                f"{path} has no class folders" + (" (its images lie flat in it)" if has_files else ""),
                _flat_fix(root, b, path),
            )
    if report.problems:
        raise _Unusable
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.SEED = root, b.name, 0
    try:
        dataset = b.cls(cfg)
    except (UserError, ValueError, OSError) as e:
        report.fail(str(e), _see(b))
        raise _Unusable from None
    test = [(d.impath, d.label) for d in dataset.test]
    if b.name == "ImageNet":  # its val split is its test split
        return {"train": [(d.impath, d.label) for d in dataset.train_x], "val": None, "test": test}
    return {"train": None, "val": None, "test": test}


def _count(report, b, splits, verify):
    labels, missing = set(), []
    for split, items in splits.items():
        if items is None:
            continue
        absent = [p for p, _ in items if not os.path.isfile(p)] if verify else []
        missing += absent
        report.listed[split] = len(items)
        report.found[split] = len(items) - len(absent)
        labels.update(y for _, y in items)
    report.num_classes = len(labels)
    if missing:
        source = b.cls.split_file if report.split_file in ("present", "published", "not published") else None
        report.fail(
            f"{len(missing):,} of the {sum(report.listed.values()):,} images named by "
            f"{source or 'the annotation files'} do not exist",
            _missing_images_fix(b, report.folder, missing[0]),
        )
        report.bad_files, report.n_bad = missing[:LISTED], len(missing)
    listed = tuple(report.listed.get(s) for s in SPLITS)
    if listed != tuple(b.sizes):
        report.notes.append(
            f"the splits hold {_sizes(listed)} images; the published split holds {_sizes(b.sizes)} "
            f"(train / val / test){_not_published_hint(b, report)}"
        )
    if report.num_classes != b.num_classes:
        report.notes.append(f"{report.num_classes} classes; the benchmark has {b.num_classes}")


def _decode(report, splits, num_workers):
    paths = [p for items in splits.values() if items for p, _ in items if os.path.isfile(p)]
    bad = unreadable_images(paths, num_workers, desc=f"decode {report.name}")
    if bad:
        report.fail(
            f"{len(bad):,} of the {len(set(paths)):,} images cannot be read",
            "replace these files (extract the dataset's archive again) or remove them from the dataset",
        )
        report.bad_files, report.n_bad = (report.bad_files + bad)[:LISTED], report.n_bad + len(bad)


# ---- known mistakes and their fixes ----------------------------------------------------------------


def _see(b):
    return f"see DATASETS.md#{b.anchor}"


def _prepare(b, root, *extra):
    return " ".join(["python prepare_data.py", b.config_name, "--root", f'"{root}"', *extra])


def _missing_folder(root, b, folder):
    """Why ROOT/<folder> is absent: torchvision's download not laid out, an archive not extracted, the
    folder one level down; else what to fetch."""
    if b.torchvision and all(os.path.exists(os.path.join(root, src)) for src, _ in b.torchvision.links):
        quoted = f'"{root}"'
        return Problem(
            f"{folder} is missing, but torchvision's download of {b.name} is in {root}",
            f"lay it out (links, nothing is copied): {_prepare(b, root, '--cache', quoted)}",
        )
    archive = _find_archive(b, [root])
    if archive:
        return Problem(f"{folder} is missing; the archive {archive} is not extracted", _extract_fix(archive, folder))
    nested = _find_nested(root, b.folder)
    if nested:
        moved = os.path.join(nested, b.folder)
        return Problem(
            f"{folder} is missing, but the dataset is one folder too deep: {moved}",
            f'move it up: mv "{moved}" "{root}/" (or pass --root "{nested}")',
        )
    return Problem(f"{folder} is missing", f"{_prepare(b, root)} (fetches it, or prints what to download); {_see(b)}")


def _diagnose_absent(root, b, folder, rel, what):
    """(what is wrong, fix) for folder/rel absent: an archive not extracted, the dataset one folder too
    deep, or simply missing."""
    path = os.path.join(folder, rel)
    archive = _find_archive(b, [folder, os.path.dirname(path), root])
    if archive:
        return f"{path} is missing; the archive {archive} is not extracted", _extract_fix(archive, folder)
    nested = _find_nested(folder, rel)
    if nested:
        what = f"the dataset is one folder too deep: {rel} is in {nested}, not in {folder}"
        return what, _move_up_fix(nested, folder)
    return f"{what} {path} is missing", f"{_prepare(b, root)} (fetches it, or prints what to download); {_see(b)}"


def _find_archive(b, folders):
    """An official archive of the benchmark in one of `folders` (any archive in the dataset folder)."""
    for i, folder in enumerate(dict.fromkeys(folders)):
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            is_archive = entry.endswith(ARCHIVE_SUFFIXES) and os.path.isfile(os.path.join(folder, entry))
            if entry in b.archives or (i == 0 and is_archive):
                return os.path.join(folder, entry)
    return None


def _find_misplaced(split_path, folders):
    """The split file in one of `folders` or a folder of the dataset's, instead of the dataset folder."""
    name, folder = os.path.basename(split_path), os.path.dirname(split_path)
    for candidate in [*folders, *(os.path.join(folder, s) for s in _subfolders(folder))]:
        if os.path.isfile(os.path.join(candidate, name)):
            return os.path.join(candidate, name)
    return None


def _extract_fix(archive, folder):
    name = os.path.basename(archive)
    target = os.path.dirname(folder) if name in EXTRACT_IN_ROOT else folder
    if name.endswith(".zip"):
        return f'extract it: unzip "{archive}" -d "{target}"'
    return f'extract it: mkdir -p "{target}" && tar -xf "{archive}" -C "{target}"'


def _find_nested(parent, rel, depth=2):
    """parent/<one or two folders>/rel when it exists there: the folder that holds rel, else None."""
    level = [parent]
    for _ in range(depth):
        level = [os.path.join(p, s) for p in level for s in _subfolders(p)]
        for candidate in level:
            if os.path.exists(os.path.join(candidate, rel)):
                return candidate
    return None


def _move_up_fix(nested, dest):
    """Move the contents of `nested` into `dest`, its ancestor (via a temporary name: `nested` may hold
    a folder of its own name, as in sun397/SUN397/SUN397)."""
    return (
        f'move its contents up: cd "{dest}" && mv "{os.path.relpath(nested, dest)}" _nested '
        f"&& mv _nested/* . && rmdir _nested"
    )


def _missing_images_fix(b, folder, first_missing):
    """Images a list names are absent: maybe the whole tree sits one folder too deep."""
    rel = os.path.relpath(first_missing, folder)
    nested = _find_nested(folder, rel)
    if nested:
        return f"the dataset is one folder too deep (the images are in {nested}): " + _move_up_fix(nested, folder)
    return (
        "the extraction is incomplete or the images are not where the split expects them: extract the "
        f"archive again, or download the published split file ({b.split_url or _see(b)})"
    )


def _classnames_fix(root, b, folder):
    if b.name == "ImageNet":
        return f"{_prepare(b, root)} writes it (CLIP's ImageNet class names), or download it from {CLASSNAMES.url}"
    return (
        f'{_prepare(b, root)} copies it from imagenet/, or: cp "{os.path.join(root, "imagenet", "classnames.txt")}" '
        f'"{folder}/"'
    )


def _flat_fix(root, b, path):
    if b.name == "ImageNet" and path.endswith("val"):
        return "sort the validation images into one folder per wnid with the official devkit's labels: " + _prepare(
            b, root, "--devkit", "ILSVRC2012_devkit_t12.tar.gz"
        )
    return f"extract the archive again so that {path} holds one folder per class; {_see(b)}"


def _not_published_hint(b, report):
    if report.split_file in ("present", "not published") and b.cls.split_file:
        return f": {b.cls.split_file} is not the published file ({b.split_url})"
    return ""


def _sizes(sizes):
    return " / ".join("-" if n is None else f"{n:,}" for n in sizes)


def _subfolders(path):
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


# ---- the table -------------------------------------------------------------------------------------


def _cell(report, split, reference):
    if reference is None and split not in report.found:
        return "-"
    found = report.found.get(split)
    found = "?" if found is None else f"{found:,}"
    return f"{found}/{reference:,}" if reference is not None else found


def format_reports(reports):
    """The table, then each dataset's problems (with their fixes), missing or unreadable files and notes."""
    rows = [
        [
            r.name,
            r.status,
            *(_cell(r, s, ref) for s, ref in zip(SPLITS, r.reference)),
            "?" if r.num_classes is None else r.num_classes,
            r.split_file or "-",
        ]
        for r in reports
    ]
    headers = ["dataset", "status", "train", "val", "test", "classes", "split file"]
    lines = [tabulate(rows, headers=headers, disable_numparse=True), "(images found / in the published split)"]
    for r in reports:
        if r.problems or r.notes:
            lines += ["", f"{r.name} ({r.folder}): {r.status}", *details(r)]
    if any(r.split_file == "present" for r in reports):
        lines.append("\n" + CHECKSUMS_UNKNOWN)
    return "\n".join(lines)


def details(report):
    """The lines under a dataset's row: each problem, the files at fault and the fix; then the notes."""
    lines = []
    for p in report.problems:
        lines.append(f"  - {p.what}")
        if p.what.endswith(("do not exist", "cannot be read")):
            lines += [f"      {f}" for f in report.bad_files]
            if report.n_bad > len(report.bad_files):
                lines.append(f"      ... and {report.n_bad - len(report.bad_files):,} more")
        lines.append(f"    fix: {p.fix}")
    return lines + [f"  - note: {n}" for n in report.notes]


def require_usable(root, name):
    """The check a run makes before it reads its dataset: a DataError with every problem and its fix."""
    report = check_dataset(root, name)
    if report.usable:
        for note in report.notes:
            logger.info(f"{report.name}: {note}")
        return report
    problems = [line for line in details(report) if not line.startswith("  - note:")]
    raise DataError("\n".join([f"{report.name} cannot be used ({report.folder}):", *problems]))
