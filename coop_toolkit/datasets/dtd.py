"""Describable Textures (47 classes): ROOT/dtd/{images/<class>/, split_zhou_DescribableTextures.json}."""

from dasslite.data.benchmark import FolderSplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.splits import read_and_split_data


@DATASET_REGISTRY.register()
class DescribableTextures(FolderSplitDataset):
    dataset_dir, image_subdir, split_file, anchor = "dtd", "images", "split_zhou_DescribableTextures.json", "dtd"
    read_and_split_data = staticmethod(read_and_split_data)  # the reference's name, for ported datasets
