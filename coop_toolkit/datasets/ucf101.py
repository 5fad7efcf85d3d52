"""UCF101 middle frames (101 actions): ROOT/ucf101/{UCF-101-midframes/<Action_Name>/, ucfTrainTestlist/,
split_zhou_UCF101.json}."""

import os
import re

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase, fewshot_and_subsample, make_rng, require_dataset_dir, require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import read_or_make_split, split_trainval

ANCHOR = "ucf101"


@DATASET_REGISTRY.register()
class UCF101(DatasetBase):
    dataset_dir = "ucf101"

    def __init__(self, cfg):
        self.dataset_dir = require_dataset_dir(cfg, "ucf101", ANCHOR)
        self.image_dir = os.path.join(self.dataset_dir, "UCF-101-midframes")
        rng = make_rng(cfg)

        def make_split():
            cname2lab = {}
            with open(self.require("classInd.txt")) as f:
                for line in f:
                    if line.strip():
                        label, action = line.split()
                        cname2lab[action] = int(label) - 1
            trainval = self.read_data(cname2lab, "trainlist01.txt")
            test = self.read_data(cname2lab, "testlist01.txt")
            train, val = split_trainval(trainval, rng=rng)
            return train, val, test

        split_path = os.path.join(self.dataset_dir, "split_zhou_UCF101.json")
        train, val, test = read_or_make_split(split_path, self.image_dir, make_split)
        train, val, test = fewshot_and_subsample(cfg, self.dataset_dir, train, val, test, rng)
        super().__init__(train_x=train, val=val, test=test)

    def require(self, name):
        return require_path(
            os.path.join(self.dataset_dir, "ucfTrainTestlist", name),
            f"split_zhou_UCF101.json is absent and the list file {name}",
            ANCHOR,
        )

    def read_data(self, cname2lab, text_file):
        """Lines `Action/v_Action_gXX_cYY.avi [label]`; frames live in folders named Action_Split_On_Capitals."""
        items = []
        with open(self.require(text_file)) as f:
            for line in f:
                if not line.strip():
                    continue
                action, filename = line.split()[0].split("/")
                classname = "_".join(re.findall("[A-Z][^A-Z]*", action))  # ApplyEyeMakeup -> Apply_Eye_Makeup
                impath = os.path.join(self.image_dir, classname, filename.replace(".avi", ".jpg"))
                items.append(Datum(impath=impath, label=cname2lab[action], classname=classname))
        return items
