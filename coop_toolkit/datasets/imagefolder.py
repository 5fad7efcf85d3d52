"""Your own images as a dataset: DATASET.NAME ImageFolder, DATASET.ROOT = the folder itself.

    ROOT/train/<class>/*.jpg      required; labels = sorted class folder order
    ROOT/val/<class>/*.jpg        optional; else 20% of each train class (the same for every seed)
    ROOT/test/<class>/*.jpg       required
    ROOT/classnames.txt           optional; lines `<class folder> <class name words>`

Few-shot sampling and base/new splits work as for the benchmarks.
"""

import logging
import os
import random

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, dataset_root, fewshot_and_subsample, make_rng
from dasslite.data.datum import Datum
from dasslite.data.splits import listdir_nohidden, split_trainval

logger = logging.getLogger(__name__)
ANCHOR = "imagefolder"
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
# The val images held out of train/ when there is no val/: fixed so every seed validates on the same set.
VAL_SPLIT_SEED = 0


def read_classnames_file(path, folders):
    """folder -> class name from `<folder> <name words>` lines; one line per class folder."""
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    if len(lines) != len(folders):
        raise ValueError(
            f"{path} has {len(lines)} non-empty lines but train/ has {len(folders)} class "
            f"folders; write one line `<folder> <class name>` per class folder."
        )
    names = dict(line.partition(" ")[::2] for line in lines)
    unlisted = [f for f in folders if not names.get(f)]
    if unlisted:
        raise ValueError(
            f"{path} gives no class name for the class folder(s) {', '.join(unlisted[:5])}; "
            f"write one line `<folder> <class name>` per class folder."
        )
    return names


@DATASET_REGISTRY.register()
class ImageFolder(DatasetBase):
    def __init__(self, cfg):
        self.dataset_dir = dataset_root(cfg)
        train_dir = os.path.join(self.dataset_dir, "train")
        if not os.path.isdir(train_dir):
            raise FileNotFoundError(
                f'ImageFolder: "{train_dir}" not found. DATASET.ROOT must be the folder holding '
                f"train/<class>/*.jpg and test/<class>/*.jpg; see DATASETS.md#{ANCHOR}."
            )
        folders = [f for f in listdir_nohidden(train_dir) if os.path.isdir(os.path.join(train_dir, f))]
        if not folders:
            raise FileNotFoundError(f"{train_dir} has no class folders; see DATASETS.md#{ANCHOR}.")
        names_file = os.path.join(self.dataset_dir, "classnames.txt")
        names = read_classnames_file(names_file, folders) if os.path.exists(names_file) else {f: f for f in folders}
        self.folder2label = {f: i for i, f in enumerate(folders)}
        self.names = names

        train = self.read_split("train")
        if os.path.isdir(os.path.join(self.dataset_dir, "val")):
            val = self.read_split("val")
        else:
            logger.info("No val/ folder: holding out 20% of each train/ class as val")
            train, val = split_trainval(train, rng=random.Random(VAL_SPLIT_SEED))
        if not os.path.isdir(os.path.join(self.dataset_dir, "test")):
            raise FileNotFoundError(
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
        for folder in listdir_nohidden(split_dir):
            class_dir = os.path.join(split_dir, folder)
            if not os.path.isdir(class_dir):
                continue
            if folder not in self.folder2label:
                raise ValueError(
                    f'{class_dir}: class "{folder}" has no folder in train/; every class of '
                    f"{split}/ must also be a class of train/."
                )
            label, classname = self.folder2label[folder], self.names[folder]
            for imname in listdir_nohidden(class_dir):
                if imname.lower().endswith(IMG_EXTENSIONS):
                    items.append(Datum(impath=os.path.join(class_dir, imname), label=label, classname=classname))
        if not items:
            raise FileNotFoundError(
                f"{split_dir} holds no images ({', '.join(IMG_EXTENSIONS)}); see DATASETS.md#{ANCHOR}."
            )
        return items
