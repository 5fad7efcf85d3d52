"""Oxford-IIIT Pets (37 breeds): ROOT/oxford_pets/{images/, annotations/, split_zhou_OxfordPets.json}."""

import os

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import read_or_make_split, read_split, save_split, split_trainval

ANCHOR = "oxfordpets"


@DATASET_REGISTRY.register()
class OxfordPets(DatasetBase):
    dataset_dir = "oxford_pets"
    # The reference's helpers lived here; custom datasets written for it call them by these names
    # (split_trainval now needs `rng=`: the global random is never used).
    read_split = staticmethod(read_split)
    save_split = staticmethod(save_split)
    split_trainval = staticmethod(split_trainval)

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "oxford_pets", ANCHOR)
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.anno_dir = os.path.join(self.dataset_dir, "annotations")
        split_path = os.path.join(self.dataset_dir, "split_zhou_OxfordPets.json")
        rng = make_rng(cfg)

        def make_split():
            trainval = self.read_data("trainval.txt")
            test = self.read_data("test.txt")
            train, val = split_trainval(trainval, rng=rng)
            return train, val, test

        train, val, test = read_or_make_split(split_path, self.image_dir, make_split)
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, split_file):
        """Lines `<imname> <class id> <species> <breed id>`; the class name is the image-name prefix."""
        filepath = require_path(
            os.path.join(self.anno_dir, split_file),
            "split_zhou_OxfordPets.json is absent and the annotation file",
            ANCHOR,
        )
        items = []
        with open(filepath) as f:
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue  # the official list.txt has a comment header; skip one here too
                imname, label = line.split()[:2]
                breed = "_".join(imname.split("_")[:-1]).lower()
                impath = os.path.join(self.image_dir, imname + ".jpg")
                items.append(Datum(impath=impath, label=int(label) - 1, classname=breed))
        return items
