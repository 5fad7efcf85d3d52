"""Oxford-IIIT Pets (37 breeds): ROOT/oxford_pets/{images/, annotations/, split_zhou_OxfordPets.json}."""

import os

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.data.splits import read_split, save_split, split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(SplitDataset):
    dataset_dir, image_subdir, split_file, anchor = "oxford_pets", "images", "split_zhou_OxfordPets.json", "oxfordpets"
    # The reference's helpers lived here; custom datasets written for it call them by these names
    # (split_trainval now needs `rng=`: the global random is never used).
    read_split = staticmethod(read_split)
    save_split = staticmethod(save_split)
    split_trainval = staticmethod(split_trainval)

    def make_split(self, rng):
        trainval = self.read_data("trainval.txt")
        test = self.read_data("test.txt")
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    def read_data(self, split_file):
        """Lines `<imname> <class id> <species> <breed id>`; the class name is the image-name prefix."""
        filepath = self.require(os.path.join("annotations", split_file), "the annotation file")
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
