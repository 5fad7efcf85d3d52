"""ImageNetV2 matched-frequency (test only): ROOT/imagenetv2/{imagenetv2-matched-frequency-format-val/<0..999>/,
classnames.txt}."""

import os

from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.datum import Datum
from dasslite.data.splits import listdir_nohidden

from .imagenet import TestOnlyImageNetBase


@DATASET_REGISTRY.register()
class ImageNetV2(TestOnlyImageNetBase):
    folder, image_subdir, anchor = "imagenetv2", "imagenetv2-matched-frequency-format-val", "imagenetv2"
    dataset_dir = folder

    def read_data(self, classnames):
        """Folders are numbered 0..999 by the standard class index, i.e. sorted wnid order."""
        wnids = sorted(classnames)
        missing = [str(i) for i in range(len(wnids)) if not os.path.isdir(os.path.join(self.image_dir, str(i)))]
        if missing:
            raise FileNotFoundError(
                f"{self.image_dir} lacks {len(missing)} of the {len(wnids)} class folders named by "
                f"{self.text_file}, e.g. {', '.join(missing[:5])}. See DATASETS.md#{self.anchor}."
            )
        items = []
        for label, wnid in enumerate(wnids):
            class_dir = os.path.join(self.image_dir, str(label))
            for imname in listdir_nohidden(class_dir):
                items.append(Datum(impath=os.path.join(class_dir, imname), label=label, classname=classnames[wnid]))
        return items
