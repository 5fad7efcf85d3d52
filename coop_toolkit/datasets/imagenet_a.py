"""ImageNet-A (test only, 200 classes): ROOT/imagenet-adversarial/{imagenet-a/<wnid>/, classnames.txt}."""

from dasslite.data.build import DATASET_REGISTRY

from .imagenet import TestOnlyImageNetBase


@DATASET_REGISTRY.register()
class ImageNetA(TestOnlyImageNetBase):
    folder, image_subdir, anchor = "imagenet-adversarial", "imagenet-a", "imagenet-a"
    dataset_dir = folder
