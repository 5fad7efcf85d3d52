"""The shape most benchmarks share: a folder under DATASET.ROOT, a split file (made from the
annotation files when absent), then the cached few-shot draw and the base/new class split.

A benchmark module sets the class attributes and, for a split file it may have to make, implements
`make_split(rng)`; the order of random draws (split first, then few-shot) is fixed here, once.
See docs/reference-behaviour.md, "Dataset pipeline".
"""

import os

from ..errors import UserFileNotFoundError
from .dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from .splits import read_and_split_data, read_or_make_split


class SplitDataset(DatasetBase):
    """ROOT/<dataset_dir>/{<image_subdir>/, <split_file>} -> few-shot train, val, test."""

    dataset_dir = ""  # folder under DATASET.ROOT; the instance attribute becomes its absolute path
    image_subdir = ""  # image folder inside it ("" = the dataset folder); split-file paths are relative to it
    split_file = ""  # e.g. split_zhou_OxfordPets.json
    anchor = ""  # the section of DATASETS.md that describes the layout

    def __init__(self, cfg):
        self.locate(require_dataset_dir(cfg, type(self).dataset_dir, self.anchor))
        rng = make_rng(cfg)
        train, val, test = self.read_splits(rng)
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def locate(self, dataset_dir):
        self.dataset_dir = dataset_dir
        self.image_dir = os.path.join(dataset_dir, self.image_subdir) if self.image_subdir else dataset_dir

    @classmethod
    def reader(cls, dataset_dir):
        """An instance that only reads the folder's files (`make_split`), without building the dataset:
        what the layout check (coop_toolkit/datasets/check.py) uses, as it must write nothing."""
        reader = cls.__new__(cls)
        reader.locate(dataset_dir)
        return reader

    def read_splits(self, rng):
        """(train, val, test): the split file, or `make_split(rng)` saved as the split file."""
        split_path = os.path.join(self.dataset_dir, self.split_file)
        return read_or_make_split(split_path, self.image_dir, lambda: self.make_split(rng))

    def make_split(self, rng):
        """(train, val, test) from the annotation files; called only when the split file is absent."""
        raise NotImplementedError(f"{type(self).__name__} needs {self.split_file} (see DATASETS.md#{self.anchor})")

    def require(self, relpath, what):
        """dataset_dir/relpath, or an error saying the split file is absent and so is this file."""
        return require_path(
            os.path.join(self.dataset_dir, relpath), f"{self.split_file} is absent and {what}", self.anchor
        )


class FolderSplitDataset(SplitDataset):
    """A split file, else the reference's 50/20/30 split of image_dir/<class>/* per class."""

    ignored = ()  # class folders left out
    new_cnames = None  # folder name -> class name, where they differ

    def make_split(self, rng):
        if not os.path.isdir(self.image_dir):
            raise UserFileNotFoundError(
                f'{self.split_file} is absent and so is the image folder "{self.image_dir}" to make it '
                f"from. See DATASETS.md#{self.anchor}."
            )
        return read_and_split_data(self.image_dir, ignored=self.ignored, new_cnames=self.new_cnames, rng=rng)
