"""Caltech-101 (100 classes): ROOT/caltech-101/{101_ObjectCategories/<class>/, split_zhou_Caltech101.json}."""

from dasslite.data.benchmark import FolderSplitDataset
from dasslite.data.build import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Caltech101(FolderSplitDataset):
    dataset_dir, image_subdir, anchor = "caltech-101", "101_ObjectCategories", "caltech101"
    split_file = "split_zhou_Caltech101.json"
    # The background class and the duplicate face class are left out, as in the reference.
    ignored = ("BACKGROUND_Google", "Faces_easy")
    new_cnames = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
