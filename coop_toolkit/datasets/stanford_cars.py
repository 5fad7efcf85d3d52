"""Stanford Cars (196 classes): ROOT/stanford_cars/{cars_train/, cars_test/, devkit/,
cars_test_annos_withlabels.mat, split_zhou_StanfordCars.json}."""

import os

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.data.splits import split_trainval

from ._matlab import loadmat


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    # No image_subdir: unlike the other split files, this one's paths are relative to the dataset folder.
    dataset_dir, split_file, anchor = "stanford_cars", "split_zhou_StanfordCars.json", "stanfordcars"

    def make_split(self, rng):
        meta = os.path.join("devkit", "cars_meta.mat")
        trainval = self.read_data("cars_train", os.path.join("devkit", "cars_train_annos.mat"), meta)
        test = self.read_data("cars_test", "cars_test_annos_withlabels.mat", meta)
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    def read_data(self, image_dir, anno_file, meta_file):
        what = "the file to make it from"
        annos = loadmat(self.require(anno_file, what), self.split_file, self.anchor)["annotations"][0]
        names = loadmat(self.require(meta_file, what), self.split_file, self.anchor)["class_names"][0]
        items = []
        for anno in annos:
            label = int(anno["class"][0, 0]) - 1
            words = str(names[label][0]).split(" ")
            classname = " ".join([words[-1]] + words[:-1])  # the year first: "2012 Tesla Model S Sedan"
            impath = os.path.join(self.dataset_dir, image_dir, str(anno["fname"][0]))
            items.append(Datum(impath=impath, label=label, classname=classname))
        return items
