"""Food-101 (101 classes): ROOT/food-101/{images/<class>/, split_zhou_Food101.json}."""

from dasslite.data.benchmark import FolderSplitDataset
from dasslite.data.build import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(FolderSplitDataset):
    # Without the split file the official meta/ split is ignored, as in the reference (50/20/30).
    dataset_dir, image_subdir, split_file, anchor = "food-101", "images", "split_zhou_Food101.json", "food101"
