"""The benchmarks' names: output / config folder names and DATASET.NAME values -> the papers' row names.

Pure Python (no torch), so results.py and the linear probe both read it cheaply.
"""

# Paper row name -> (output folder name as in configs/datasets/<name>.yaml, DATASET.NAME).
_DATASETS = {
    "ImageNet": ("imagenet", "ImageNet"),
    "Caltech101": ("caltech101", "Caltech101"),
    "OxfordPets": ("oxford_pets", "OxfordPets"),
    "StanfordCars": ("stanford_cars", "StanfordCars"),
    "Flowers102": ("oxford_flowers", "OxfordFlowers"),
    "Food101": ("food101", "Food101"),
    "FGVCAircraft": ("fgvc_aircraft", "FGVCAircraft"),
    "SUN397": ("sun397", "SUN397"),
    "DTD": ("dtd", "DescribableTextures"),
    "EuroSAT": ("eurosat", "EuroSAT"),
    "UCF101": ("ucf101", "UCF101"),
    "ImageNetV2": ("imagenetv2", "ImageNetV2"),
    "ImageNet-Sketch": ("imagenet_sketch", "ImageNetSketch"),
    "ImageNet-A": ("imagenet_a", "ImageNetA"),
    "ImageNet-R": ("imagenet_r", "ImageNetR"),
}

# The papers' column order: the 11 few-shot / base-to-new datasets, and the 4 ImageNet variants.
ELEVEN = list(_DATASETS)[:11]
XD_TARGETS = ELEVEN[1:]
DG_TARGETS = ["ImageNetV2", "ImageNet-Sketch", "ImageNet-A", "ImageNet-R"]

_LOOKUP = {}
for _paper, (_folder, _cfg_name) in _DATASETS.items():
    for _alias in (_paper, _folder, _cfg_name):
        _LOOKUP[_alias.lower()] = _paper


def paper_name(name):
    """Map a folder name or DATASET.NAME to the paper's row name; unknown names pass through unchanged
    (a user's own dataset still gets a row, under its own name)."""
    return _LOOKUP.get(name.lower(), name)


def folder_name(paper):
    """The output / config folder name of a paper dataset name (used by the protocol scripts' lists)."""
    return _DATASETS[paper][0]


def dataset_name(paper):
    """The DATASET.NAME of a paper dataset name."""
    return _DATASETS[paper][1]


def order_key(name):
    """Sort datasets in the papers' order, unknown ones after, alphabetically."""
    names = list(_DATASETS)
    return (names.index(name), "") if name in names else (len(names), name)
