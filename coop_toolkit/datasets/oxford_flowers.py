"""Oxford Flowers-102: ROOT/oxford_flowers/{jpg/, imagelabels.mat, cat_to_name.json, split_zhou_OxfordFlowers.json}."""

import logging
import os
from collections import OrderedDict

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.utils.io import read_json

from ._matlab import loadmat

logger = logging.getLogger(__name__)


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    dataset_dir, image_subdir, split_file, anchor = (
        "oxford_flowers",
        "jpg",
        "split_zhou_OxfordFlowers.json",
        "flowers102",
    )

    def make_split(self, rng):
        """Per class (first-appearance order in imagelabels.mat) 50/20/30; the official setid.mat is
        ignored, as in the reference."""
        what = "the file to make it from"
        label_file = self.require("imagelabels.mat", what)
        names_file = self.require("cat_to_name.json", what)
        tracker = OrderedDict()
        for i, label in enumerate(loadmat(label_file, self.split_file, self.anchor)["labels"][0]):
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
