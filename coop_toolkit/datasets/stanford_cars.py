"""Stanford Cars (196 classes): ROOT/stanford_cars/{cars_train/, cars_test/, devkit/,
cars_test_annos_withlabels.mat, split_zhou_StanfordCars.json}."""

import os

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import read_or_make_split, split_trainval

from ._matlab import loadmat

ANCHOR = "stanfordcars"
SPLIT_NAME = "split_zhou_StanfordCars.json"


@DATASET_REGISTRY.register()
class StanfordCars(DatasetBase):
    dataset_dir = "stanford_cars"

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "stanford_cars", ANCHOR)
        rng = make_rng(cfg)

        def make_split():
            join = os.path.join
            meta = join(self.dataset_dir, "devkit", "cars_meta.mat")
            trainval = self.read_data("cars_train", join(self.dataset_dir, "devkit", "cars_train_annos.mat"), meta)
            test = self.read_data("cars_test", join(self.dataset_dir, "cars_test_annos_withlabels.mat"), meta)
            train, val = split_trainval(trainval, rng=rng)
            return train, val, test

        # Unlike the other split files, this one's paths are relative to the dataset folder.
        split_path = os.path.join(self.dataset_dir, SPLIT_NAME)
        train, val, test = read_or_make_split(split_path, self.dataset_dir, make_split)
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def read_data(self, image_dir, anno_file, meta_file):
        what = f"{SPLIT_NAME} is absent and the file to make it from"
        annos = loadmat(require_path(anno_file, what, ANCHOR), SPLIT_NAME, ANCHOR)["annotations"][0]
        names = loadmat(require_path(meta_file, what, ANCHOR), SPLIT_NAME, ANCHOR)["class_names"][0]
        items = []
        for anno in annos:
            label = int(anno["class"][0, 0]) - 1
            words = str(names[label][0]).split(" ")
            classname = " ".join([words[-1]] + words[:-1])  # the year first: "2012 Tesla Model S Sedan"
            impath = os.path.join(self.dataset_dir, image_dir, str(anno["fname"][0]))
            items.append(Datum(impath=impath, label=label, classname=classname))
        return items
