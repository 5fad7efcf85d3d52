"""SUN397 (397 classes): ROOT/sun397/{SUN397/, ClassName.txt, Training_01.txt, Testing_01.txt,
split_zhou_SUN397.json}."""

import os

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import read_or_make_split, split_trainval

ANCHOR = "sun397"


@DATASET_REGISTRY.register()
class SUN397(DatasetBase):
    dataset_dir = "sun397"

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "sun397", ANCHOR)
        self.image_dir = os.path.join(self.dataset_dir, "SUN397")
        rng = make_rng(cfg)

        def make_split():
            with open(self.require("ClassName.txt")) as f:
                # "/a/abbey" -> "a/abbey"; the label is the line index
                classnames = [line.strip()[1:] for line in f if line.strip()]
            cname2lab = {c: i for i, c in enumerate(classnames)}
            trainval = self.read_data(cname2lab, "Training_01.txt")
            test = self.read_data(cname2lab, "Testing_01.txt")
            train, val = split_trainval(trainval, rng=rng)
            return train, val, test

        split_path = os.path.join(self.dataset_dir, "split_zhou_SUN397.json")
        train, val, test = read_or_make_split(split_path, self.image_dir, make_split)
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def require(self, name):
        return require_path(
            os.path.join(self.dataset_dir, name),
            f"split_zhou_SUN397.json is absent and the partition file {name}",
            ANCHOR,
        )

    def read_data(self, cname2lab, text_file):
        """Lines `/a/abbey/sun_xxx.jpg`; the class name is the path after the letter, reversed
        (`a/apartment_building/outdoor` -> `outdoor apartment_building`)."""
        items = []
        with open(self.require(text_file)) as f:
            for line in f:
                if not line.strip():
                    continue
                imname = line.strip()[1:]
                folder = os.path.dirname(imname)
                classname = " ".join(folder.split("/")[1:][::-1])
                impath = os.path.join(self.image_dir, imname)
                items.append(Datum(impath=impath, label=cname2lab[folder], classname=classname))
        return items
