"""Describable Textures (47 classes): ROOT/dtd/{images/<class>/, split_zhou_DescribableTextures.json}."""

import os

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir
from dasslite.data.splits import read_and_split_data, read_or_make_split


def folder_split_dataset(dataset, cfg, folder, image_subdir, split_name, anchor, **split_kwargs):
    """Shared by DTD, Caltech101, Food101 and EuroSAT: a split file, else the 50/20/30 folder split."""
    dataset.dataset_dir = require_dataset_dir(cfg, folder, anchor)
    dataset.image_dir = os.path.join(dataset.dataset_dir, image_subdir)
    rng = make_rng(cfg)

    def make_split():
        if not os.path.isdir(dataset.image_dir):
            raise FileNotFoundError(
                f'{split_name} is absent and so is the image folder "{dataset.image_dir}" to make it '
                f"from. See DATASETS.md#{anchor}."
            )
        return read_and_split_data(dataset.image_dir, rng=rng, **split_kwargs)

    split_path = os.path.join(dataset.dataset_dir, split_name)
    train, val, test = read_or_make_split(split_path, dataset.image_dir, make_split)
    return fewshot_and_subsample(cfg, dataset.dataset_dir, train, val, test, rng)


@DATASET_REGISTRY.register()
class DescribableTextures(DatasetBase):
    dataset_dir = "dtd"
    read_and_split_data = staticmethod(read_and_split_data)  # the reference's name, for ported datasets

    def __init__(self, cfg):
        train, val, test = folder_split_dataset(
            self, cfg, "dtd", "images", "split_zhou_DescribableTextures.json", "dtd"
        )
        super().__init__(train_x=train, val=val, test=test)
