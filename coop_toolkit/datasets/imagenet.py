"""ImageNet (ILSVRC-2012, 1000 classes): ROOT/imagenet/{images/train/<wnid>/, images/val/<wnid>/,
classnames.txt}. The official val set is both val and test, as in the reference."""

import logging
import os
from collections import OrderedDict

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import listdir_nohidden

logger = logging.getLogger(__name__)
ANCHOR = "imagenet"


def read_classnames(text_file, anchor=ANCHOR):
    """wnid -> class name, in file order, from lines `<wnid> <class name words>`."""
    require_path(text_file, "classnames.txt (copy it from the imagenet/ folder)", anchor)
    classnames = OrderedDict()
    with open(text_file) as f:
        for line in f:
            if line.strip():
                folder, _, name = line.strip().partition(" ")
                classnames[folder] = name
    return classnames


def subfolders(path):
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def read_wnid_folders(image_dir, classnames, folder2label, text_file):
    """Datum for every file of image_dir/<wnid>/, folders and files in sorted order.

    Files are sorted (the reference's unsorted listing made the few-shot draw differ between machines;
    docs/reference-behaviour.md, "Few-shot draw"). Labels come from `folder2label`, so a split missing a class
    keeps the others'.
    """
    items = []
    for folder in subfolders(image_dir):
        if folder not in folder2label or folder not in classnames:
            raise ValueError(
                f'{image_dir}: class folder "{folder}" is not a known class (no line for it in '
                f"{text_file}, or no such folder in the training set)"
            )
        label, classname = folder2label[folder], classnames[folder]
        for imname in listdir_nohidden(os.path.join(image_dir, folder)):
            items.append(Datum(impath=os.path.join(image_dir, folder, imname), label=label, classname=classname))
    return items


def check_wnid_layout(split_dir):
    """ImageNet val is distributed flat; the reference then silently finds no test images (CoOp issue #60)."""
    require_path(split_dir, "ImageNet image folder", ANCHOR)
    if not subfolders(split_dir):
        raise FileNotFoundError(
            f"{split_dir} has no class (wnid) folders. The images must be sorted into one folder per "
            f"wnid, e.g. with valprep.sh for the val set; see DATASETS.md#{ANCHOR}."
        )


@DATASET_REGISTRY.register()
class ImageNet(DatasetBase):
    dataset_dir = "imagenet"

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "imagenet", ANCHOR)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        text_file = os.path.join(self.dataset_dir, "classnames.txt")
        classnames = read_classnames(text_file)
        train_dir, val_dir = (os.path.join(self.image_dir, s) for s in ("train", "val"))
        check_wnid_layout(train_dir)
        check_wnid_layout(val_dir)
        folders = subfolders(train_dir)
        unnamed = [f for f in folders if f not in classnames]
        if unnamed:
            raise ValueError(
                f"{len(unnamed)} class folders of {train_dir} have no line in {text_file}, "
                f"e.g. {', '.join(unnamed[:5])}"
            )
        folder2label = {f: i for i, f in enumerate(folders)}  # label = sorted wnid order
        # No preprocessed.pkl: listing is cheap next to training, and a pickle goes stale silently.
        train = read_wnid_folders(train_dir, classnames, folder2label, text_file)
        test = read_wnid_folders(val_dir, classnames, folder2label, text_file)
        train, _, test = fewshot_and_subsample(cfg, self.dataset_dir, train, None, test, make_rng(cfg))
        super().__init__(train_x=train, val=test, test=test)


class TestOnlyImageNetBase(DatasetBase):
    """Base of the test-only variants: each reads classnames.txt from its own folder (copied from
    imagenet/) and ignores NUM_SHOTS and SUBSAMPLE_CLASSES (train_x = test = every image, as in the
    reference)."""

    folder = ""
    image_subdir = ""
    anchor = ""

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, self.folder, self.anchor)
        self.image_dir = require_path(
            os.path.join(self.dataset_dir, self.image_subdir), f"{type(self).__name__} image folder", self.anchor
        )
        self.text_file = os.path.join(self.dataset_dir, "classnames.txt")
        classnames = read_classnames(self.text_file, self.anchor)
        if cfg.DATASET.NUM_SHOTS >= 1 or cfg.DATASET.SUBSAMPLE_CLASSES != "all":
            logger.info(
                f"{type(self).__name__} is test-only: DATASET.NUM_SHOTS and DATASET.SUBSAMPLE_CLASSES are ignored"
            )
        data = self.read_data(classnames)
        super().__init__(train_x=data, test=data)

    def read_data(self, classnames):
        """Folders are wnids; labels follow sorted wnid order over the folders present (200 for A and R)."""
        folders = subfolders(self.image_dir)  # folders only: README.txt of -A and -R is skipped
        folder2label = {f: i for i, f in enumerate(folders)}
        return read_wnid_folders(self.image_dir, classnames, folder2label, self.text_file)
