"""Your own images as a dataset: DATASET.NAME ImageFolder, DATASET.ROOT = the folder itself.

    ROOT/train/<class>/*.jpg      required, at least two classes; labels = sorted class folder order
    ROOT/val/<class>/*.jpg        optional; else 20% of each train class (the same for every seed)
    ROOT/test/<class>/*.jpg       required
    ROOT/classnames.txt           optional; lines `<class folder> <class name words>`

Images in subfolders of a class folder (train/<class>/more/x.jpg) belong to that class, as with
torchvision's ImageFolder. Class folders without images and hidden folders are skipped with a warning
(DATASETS.md#imagefolder); hidden files and subfolders are skipped.

Few-shot sampling and base/new splits work as for the benchmarks.
"""

import logging
import os
import random

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, dataset_root, fewshot_and_subsample, make_rng
from dasslite.data.datum import Datum
from dasslite.data.splits import split_trainval
from dasslite.errors import DataError, UserFileNotFoundError
from dasslite.utils.logger import notice_once

logger = logging.getLogger(__name__)
ANCHOR = "imagefolder"
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
# The val images held out of train/ when there is no val/: fixed so every seed validates on the same set.
VAL_SPLIT_SEED = 0


def _parse_line(line, known):
    """(folder, class name) of one classnames.txt line; folder names may hold spaces.

    A tab separates the two when given; otherwise the line starts with the folder name, matched
    against the class folders of train/ (so `ice cream soft serve` names the folder `ice cream`).
    """
    if "\t" in line:
        folder, name = line.split("\t", 1)
        return folder.strip(), name.strip()
    matches = [f for f in known if line == f or line.startswith(f + " ")]
    if len(matches) > 1:
        raise DataError(
            f'the line "{line}" could name the class folders {" or ".join(repr(m) for m in matches)}; '
            f"separate the folder from the class name with a tab"
        )
    folder = matches[0] if matches else line.partition(" ")[0]
    return folder, line[len(folder) :].strip()


def read_classnames_file(path, folders, skipped=()):
    """folder -> class name from `<folder> <name words>` lines; one line per class folder.

    `skipped`: class folders left out (empty), whose lines are allowed but not needed.
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not UTF-8 text (byte {e.start}); save it as UTF-8, one line per class folder"
        ) from None
    known = list(folders) + list(skipped)
    if not len(folders) <= len(lines) <= len(known):
        raise DataError(
            f"{path} has {len(lines)} non-empty lines but train/ has {len(folders)} class "
            f"folders with images; write one line `<folder> <class name>` per class folder."
        )
    names, unknown = {}, []
    for number, line in enumerate(lines, 1):
        try:
            folder, name = _parse_line(line, known)
        except ValueError as e:
            raise DataError(f"{path}, line {number}: {e}.") from None
        if folder not in known:
            unknown.append(f'line {number} ("{line}") names "{folder}", which is not a class folder of train/')
        elif folder in names:
            raise DataError(f'{path}, line {number}: the class folder "{folder}" is named twice.')
        names[folder] = name
    unlisted = [f for f in folders if not names.get(f)]
    if unlisted or unknown:
        missing = [f"it gives no class name for the class folder(s) {', '.join(unlisted[:5])}"] if unlisted else []
        raise DataError(
            f"{path}: {'; '.join(missing + unknown[:5])}. Write one line `<folder> <class name>` per "
            f"class folder (a tab between them when the folder name has spaces)."
        )
    return names


def class_folders(split_dir):
    """Sorted class folders of ROOT/<split>; hidden folders are skipped with a warning naming them."""
    entries = sorted(e for e in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, e)))
    hidden = [e for e in entries if e.startswith(".")]
    if hidden:
        notice_once(
            logger,
            f"ImageFolder: skipping the hidden folder(s) {', '.join(os.path.join(split_dir, h) for h in hidden)} "
            f"(their names start with '.'); rename a folder that is a class.",
        )
    return [e for e in entries if not e.startswith(".")]


def image_files(class_dir):
    """Paths of the image files under `class_dir`, at any depth, in torchvision ImageFolder's order
    (folders sorted by path, then files by name; the class folder's own files come first, as before
    subfolders were read). Hidden files and folders are skipped; a folder reached twice through
    symbolic links is read once."""
    walked, seen = [], set()
    for folder, subfolders, files in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(folder)
        subfolders[:] = [] if real in seen else [d for d in subfolders if not d.startswith(".")]
        if real not in seen:
            seen.add(real)
            walked.append((folder, files))
    return [
        os.path.join(folder, f)
        for folder, files in sorted(walked)
        for f in sorted(files)
        if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)
    ]


def train_classes(train_dir):
    """(class folders with images, empty class folders): the empty ones are skipped with a warning
    before labels are given, so the labels stay 0..K-1 over the classes that have images."""
    folders = class_folders(train_dir)
    empty = [f for f in folders if not image_files(os.path.join(train_dir, f))]
    if empty:
        notice_once(
            logger,
            f"ImageFolder: skipping the class folder(s) without images "
            f"{', '.join(os.path.join(train_dir, e) for e in empty)} ({' '.join(IMG_EXTENSIONS)}); "
            f"they are not classes of this dataset.",
        )
    return [f for f in folders if f not in empty], empty


@DATASET_REGISTRY.register()
class ImageFolder(DatasetBase):
    def __init__(self, cfg):
        self.dataset_dir = dataset_root(cfg)
        train_dir = os.path.join(self.dataset_dir, "train")
        if not os.path.isdir(train_dir):
            raise UserFileNotFoundError(
                f'ImageFolder: "{train_dir}" not found. DATASET.ROOT must be the folder holding '
                f"train/<class>/*.jpg and test/<class>/*.jpg; see DATASETS.md#{ANCHOR}."
            )
        folders, self.empty = train_classes(train_dir)
        if not folders:
            raise UserFileNotFoundError(f"{train_dir} has no class folders with images; see DATASETS.md#{ANCHOR}.")
        if len(folders) < 2:  # one class: every prediction is right, and the accuracy says nothing
            raise DataError(
                f'{train_dir} has one class folder with images ("{folders[0]}"); a classifier needs at '
                f"least two: add a folder of images per class (see DATASETS.md#{ANCHOR})."
            )
        undecodable = [f for f in folders if f != f.encode("utf-8", "surrogateescape").decode("utf-8", "replace")]
        if undecodable:  # the name becomes the class name: it is printed, logged, recorded and tokenized
            shown = undecodable[0].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise DataError(
                f'{train_dir}: the class folder name "{shown}" is not valid UTF-8 (it came from another system\'s '
                f"encoding); rename the folder in train/, val/ and test/."
            )
        names_file = os.path.join(self.dataset_dir, "classnames.txt")
        if os.path.exists(names_file):
            names = read_classnames_file(names_file, folders, self.empty)
        else:
            names = {f: f for f in folders}
        self.folder2label = {f: i for i, f in enumerate(folders)}
        self.names = names

        train = self.read_split("train")
        if os.path.isdir(os.path.join(self.dataset_dir, "val")):
            val = self.read_split("val")
        else:
            logger.info("No val/ folder: holding out 20% of each train/ class as val")
            train, val = split_trainval(train, rng=random.Random(VAL_SPLIT_SEED))
        if not os.path.isdir(os.path.join(self.dataset_dir, "test")):
            raise UserFileNotFoundError(
                f'ImageFolder: "{os.path.join(self.dataset_dir, "test")}" not found; '
                f"put test images in test/<class>/ (see DATASETS.md#{ANCHOR})."
            )
        test = self.read_split("test")
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, make_rng(cfg))
        super().__init__(train_x=train, val=val, test=test)

    def read_split(self, split):
        """Image files of ROOT/<split>/<class>/, classes and files in sorted order."""
        split_dir = os.path.join(self.dataset_dir, split)
        items = []
        for folder in class_folders(split_dir):
            class_dir = os.path.join(split_dir, folder)
            files = image_files(class_dir)
            if folder not in self.folder2label and (files or folder not in self.empty):
                raise DataError(
                    f'{class_dir}: class "{folder}" has no images in train/; every class of '
                    f"{split}/ must also be a class of train/, with images there."
                )
            if folder in self.folder2label:
                label, classname = self.folder2label[folder], self.names[folder]
                items.extend(Datum(impath=f, label=label, classname=classname) for f in files)
        if not items:
            raise UserFileNotFoundError(
                f"{split_dir} holds no images ({', '.join(IMG_EXTENSIONS)}); see DATASETS.md#{ANCHOR}."
            )
        return items
