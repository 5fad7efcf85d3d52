"""FGVC-Aircraft (100 variants): ROOT/fgvc_aircraft/ = the archive's data/ folder (images/,
variants.txt, images_variant_{train,val,test}.txt). The official splits are used; there is no json."""

import os

from dasslite.data.benchmark import SplitDataset
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import require_path
from dasslite.data.datum import Datum
from dasslite.data.splits import check_images_exist


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitDataset):
    dataset_dir, image_subdir, anchor = "fgvc_aircraft", "images", "fgvcaircraft"

    def read_splits(self, rng):
        """The official lists, read every time; every image they name must exist."""
        train, val, test = self.make_split(rng)
        check_images_exist(
            train + val + test,
            "the images_variant_*.txt files",
            f"Check {self.image_dir} against the layout in DATASETS.md#{self.anchor}.",
        )
        return train, val, test

    def make_split(self, rng):
        """The official lists (no random choice, so `rng` is left untouched)."""
        variants = os.path.join(self.dataset_dir, "variants.txt")
        with open(require_path(variants, "FGVCAircraft class list", self.anchor)) as f:
            classnames = [line.strip() for line in f if line.strip()]
        cname2lab = {c: i for i, c in enumerate(classnames)}  # label = line index in variants.txt
        return tuple(self.read_data(cname2lab, f"images_variant_{s}.txt") for s in ("train", "val", "test"))

    def read_data(self, cname2lab, split_file):
        """Lines `<image id> <variant name words>`."""
        filepath = require_path(os.path.join(self.dataset_dir, split_file), "FGVCAircraft split file", self.anchor)
        items = []
        with open(filepath) as f:
            for line in f:
                if not line.strip():
                    continue
                imid, classname = line.strip().split(" ", 1)
                if classname not in cname2lab:
                    raise ValueError(f'{filepath}: variant "{classname}" is not listed in variants.txt')
                impath = os.path.join(self.image_dir, imid + ".jpg")
                items.append(Datum(impath=impath, label=cname2lab[classname], classname=classname))
        return items
