"""Caltech-101 (100 classes): ROOT/caltech-101/{101_ObjectCategories/<class>/, split_zhou_Caltech101.json}."""

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase

from .dtd import folder_split_dataset

# The background class and the duplicate face class are left out, as in the reference.
IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(DatasetBase):
    dataset_dir = "caltech-101"

    def __init__(self, cfg):
        train, val, test = folder_split_dataset(
            self,
            cfg,
            "caltech-101",
            "101_ObjectCategories",
            "split_zhou_Caltech101.json",
            "caltech101",
            ignored=IGNORED,
            new_cnames=NEW_CNAMES,
        )
        super().__init__(train_x=train, val=val, test=test)
