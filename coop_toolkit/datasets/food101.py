"""Food-101 (101 classes): ROOT/food-101/{images/<class>/, split_zhou_Food101.json}."""

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase

from .dtd import folder_split_dataset


@DATASET_REGISTRY.register()
class Food101(DatasetBase):
    dataset_dir = "food-101"

    def __init__(self, cfg):
        # Without the split file the official meta/ split is ignored, as in the reference (50/20/30).
        train, val, test = folder_split_dataset(self, cfg, "food-101", "images", "split_zhou_Food101.json", "food101")
        super().__init__(train_x=train, val=val, test=test)
