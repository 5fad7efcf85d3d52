"""EuroSAT (10 classes): ROOT/eurosat/{2750/<Class>/, split_zhou_EuroSAT.json}."""

from dasslite.data.benchmark import FolderSplitDataset
from dasslite.data.build import DATASET_REGISTRY

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
class EuroSAT(FolderSplitDataset):
    dataset_dir, image_subdir, split_file, anchor = "eurosat", "2750", "split_zhou_EuroSAT.json", "eurosat"
    new_cnames = NEW_CNAMES
