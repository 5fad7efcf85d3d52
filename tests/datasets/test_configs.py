"""configs/datasets/*.yaml name registered datasets; .mat readers explain a missing scipy."""

import glob
import os
import sys

import pytest
import yaml

from dasslite.data.build import DATASET_REGISTRY, build_dataset

from .conftest import make_cfg
from .layouts import build_stanford_cars

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "datasets")
REFERENCE_FILES = {
    "caltech101": "Caltech101",
    "dtd": "DescribableTextures",
    "eurosat": "EuroSAT",
    "fgvc_aircraft": "FGVCAircraft",
    "food101": "Food101",
    "imagenet": "ImageNet",
    "imagenet_a": "ImageNetA",
    "imagenet_r": "ImageNetR",
    "imagenet_sketch": "ImageNetSketch",
    "imagenetv2": "ImageNetV2",
    "oxford_flowers": "OxfordFlowers",
    "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars",
    "sun397": "SUN397",
    "ucf101": "UCF101",
    "imagefolder": "ImageFolder",
}


def test_dataset_yamls_match_the_reference_and_the_registry():
    found = {}
    for path in glob.glob(os.path.join(CONFIG_DIR, "*.yaml")):
        with open(path) as f:
            found[os.path.basename(path)[:-5]] = yaml.safe_load(f)
    assert {k: v["DATASET"]["NAME"] for k, v in found.items()} == REFERENCE_FILES
    assert all(list(v) == ["DATASET"] and list(v["DATASET"]) == ["NAME"] for v in found.values())
    assert all(name in DATASET_REGISTRY for name in REFERENCE_FILES.values())


def test_mat_files_without_scipy_name_both_fixes(tmp_path, monkeypatch):
    build_stanford_cars(str(tmp_path))
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # import scipy.io now raises ImportError
    with pytest.raises(ImportError, match="needs scipy.*split_zhou_StanfordCars.json"):
        build_dataset(make_cfg(tmp_path, "StanfordCars"))
