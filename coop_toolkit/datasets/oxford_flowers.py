"""Oxford Flowers-102: ROOT/oxford_flowers/{jpg/, imagelabels.mat, cat_to_name.json, split_zhou_OxfordFlowers.json}."""

import logging
import os
from collections import OrderedDict

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import read_or_make_split
from dasslite.utils.io import read_json

from ._matlab import loadmat

logger = logging.getLogger(__name__)
ANCHOR = "flowers102"
SPLIT_NAME = "split_zhou_OxfordFlowers.json"


@DATASET_REGISTRY.register()
class OxfordFlowers(DatasetBase):
    dataset_dir = "oxford_flowers"

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "oxford_flowers", ANCHOR)
        self.image_dir = os.path.join(self.dataset_dir, "jpg")
        rng = make_rng(cfg)
        split_path = os.path.join(self.dataset_dir, SPLIT_NAME)
        train, val, test = read_or_make_split(split_path, self.image_dir, lambda: self.read_data(rng))
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, rng):
        """Per class (first-appearance order in imagelabels.mat) 50/20/30; the official setid.mat is
        ignored, as in the reference."""
        what = f"{SPLIT_NAME} is absent and the file to make it from"
        label_file = require_path(os.path.join(self.dataset_dir, "imagelabels.mat"), what, ANCHOR)
        names_file = require_path(os.path.join(self.dataset_dir, "cat_to_name.json"), what, ANCHOR)
        tracker = OrderedDict()
        for i, label in enumerate(loadmat(label_file, SPLIT_NAME, ANCHOR)["labels"][0]):
            impath = os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg")
            tracker.setdefault(int(label), []).append(impath)
        lab2cname = read_json(names_file)
        logger.info("Splitting data into 50% train, 20% val, and 30% test")
        train, val, test = [], [], []
        for label, impaths in tracker.items():
            rng.shuffle(impaths)
            n_train, n_val = round(len(impaths) * 0.5), round(len(impaths) * 0.2)
            if n_train <= 0 or n_val <= 0 or len(impaths) - n_train - n_val <= 0:
                raise ValueError(f"Flowers class {label} has {len(impaths)} image(s): too few for 50/20/30.")
            cname = lab2cname[str(label)]
            for out, ims in (
                (train, impaths[:n_train]),
                (val, impaths[n_train : n_train + n_val]),
                (test, impaths[n_train + n_val :]),
            ):
                out.extend(Datum(impath=im, label=label - 1, classname=cname) for im in ims)
        return train, val, test
