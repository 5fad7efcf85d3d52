"""SUN397 (397 classes): ROOT/sun397/{SUN397/, ClassName.txt, Training_01.txt, Testing_01.txt,
split_zhou_SUN397.json}."""

import os

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.data.splits import split_trainval


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    dataset_dir, image_subdir, split_file, anchor = "sun397", "SUN397", "split_zhou_SUN397.json", "sun397"

    def make_split(self, rng):
        with open(self.require("ClassName.txt", "the partition file ClassName.txt")) as f:
            # "/a/abbey" -> "a/abbey"; the label is the line index
            classnames = [line.strip()[1:] for line in f if line.strip()]
        cname2lab = {c: i for i, c in enumerate(classnames)}
        trainval = self.read_data(cname2lab, "Training_01.txt")
        test = self.read_data(cname2lab, "Testing_01.txt")
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    def read_data(self, cname2lab, text_file):
        """Lines `/a/abbey/sun_xxx.jpg`; the class name is the path after the letter, reversed
        (`a/apartment_building/outdoor` -> `outdoor apartment_building`)."""
        items = []
        with open(self.require(text_file, f"the partition file {text_file}")) as f:
            for line in f:
                if not line.strip():
                    continue
                imname = line.strip()[1:]
                folder = os.path.dirname(imname)
                classname = " ".join(folder.split("/")[1:][::-1])
                impath = os.path.join(self.image_dir, imname)
                items.append(Datum(impath=impath, label=cname2lab[folder], classname=classname))
        return items
