"""Dataset plugins: importing this package registers every dataset with DATASET_REGISTRY.

Each module turns one benchmark's folder layout (see DATASETS.md) into lists of Datum. The installed
plugins' datasets (entry point group `coop_toolkit.datasets`: coop_toolkit/plugins.py) come after them.
"""

from ..plugins import load_entry_points
from . import (
    caltech101,
    dtd,
    eurosat,
    fgvc_aircraft,
    food101,
    imagefolder,
    imagenet,
    imagenet_a,  # noqa: F401
    imagenet_r,
    imagenet_sketch,
    imagenetv2,
    oxford_flowers,
    oxford_pets,
    stanford_cars,
    sun397,
    ucf101,
)

load_entry_points("dataset")
