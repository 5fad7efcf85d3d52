"""ImageNet-R (test only, 200 classes): ROOT/imagenet-rendition/{imagenet-r/<wnid>/, classnames.txt}."""

from dasslite.data.build import DATASET_REGISTRY

from .imagenet import TestOnlyImageNetBase


@DATASET_REGISTRY.register()
class ImageNetR(TestOnlyImageNetBase):
    folder, image_subdir, anchor = "imagenet-rendition", "imagenet-r", "imagenet-r"
    dataset_dir = folder
