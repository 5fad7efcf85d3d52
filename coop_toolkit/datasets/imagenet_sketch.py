"""ImageNet-Sketch (test only): ROOT/imagenet-sketch/{images/<wnid>/, classnames.txt}."""

from dasslite.data.build import DATASET_REGISTRY

from .imagenet import TestOnlyImageNetBase


@DATASET_REGISTRY.register()
class ImageNetSketch(TestOnlyImageNetBase):
    folder, image_subdir, anchor = "imagenet-sketch", "images", "imagenet-sketch"
    dataset_dir = folder
