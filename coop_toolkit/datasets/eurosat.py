"""EuroSAT (10 classes): ROOT/eurosat/{2750/<Class>/, split_zhou_EuroSAT.json}."""

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase

from .dtd import folder_split_dataset

# Folder names -> the descriptive class names CLIP is prompted with (the reference's).
NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(DatasetBase):
    dataset_dir = "eurosat"

    def __init__(self, cfg):
        train, val, test = folder_split_dataset(
            self, cfg, "eurosat", "2750", "split_zhou_EuroSAT.json", "eurosat", new_cnames=NEW_CNAMES
        )
        super().__init__(train_x=train, val=val, test=test)
