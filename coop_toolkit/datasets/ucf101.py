"""UCF101 middle frames (101 actions): ROOT/ucf101/{UCF-101-midframes/<Action_Name>/, ucfTrainTestlist/,
split_zhou_UCF101.json}."""

import os
import re

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.data.splits import split_trainval


@DATASET_REGISTRY.register()
class UCF101(SplitDataset):
    dataset_dir, image_subdir, split_file, anchor = "ucf101", "UCF-101-midframes", "split_zhou_UCF101.json", "ucf101"

    def make_split(self, rng):
        cname2lab = {}
        with open(self.list_file("classInd.txt")) as f:
            for line in f:
                if line.strip():
                    label, action = line.split()
                    cname2lab[action] = int(label) - 1
        trainval = self.read_data(cname2lab, "trainlist01.txt")
        test = self.read_data(cname2lab, "testlist01.txt")
        train, val = split_trainval(trainval, rng=rng)
        return train, val, test

    def list_file(self, name):
        return self.require(os.path.join("ucfTrainTestlist", name), f"the list file {name}")

    def read_data(self, cname2lab, text_file):
        """Lines `Action/v_Action_gXX_cYY.avi [label]`; frames live in folders named Action_Split_On_Capitals."""
        items = []
        with open(self.list_file(text_file)) as f:
            for line in f:
                if not line.strip():
                    continue
                action, filename = line.split()[0].split("/")
                classname = "_".join(re.findall("[A-Z][^A-Z]*", action))  # ApplyEyeMakeup -> Apply_Eye_Makeup
                impath = os.path.join(self.image_dir, classname, filename.replace(".avi", ".jpg"))
                items.append(Datum(impath=impath, label=cname2lab[action], classname=classname))
        return items
