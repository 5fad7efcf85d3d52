"""Train/test image pipelines built from INPUT.TRANSFORMS names, in Dassl's order and log lines
(docs/reference-behaviour.md, "Data loaders and transforms")."""

import logging
import random

import torch
from torchvision.transforms import (
    AutoAugment,
    AutoAugmentPolicy,
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    InterpolationMode,
    Normalize,
    RandAugment,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)
from torchvision.transforms import functional as F

from ..config import TEST_RESIZE_MODES
from ..registry import unknown_name_message
from .randaugment import DasslRandAugment

logger = logging.getLogger(__name__)

AVAILABLE_TRANSFORMS = (
    "random_flip",
    "random_resized_crop",
    "normalize",
    "instance_norm",
    "random_crop",
    "random_translation",
    "center_crop",  # accepted for old yamls; a no-op since Dassl 0.5 (the test pipeline always center-crops)
    "cutout",
    "imagenet_policy",
    "cifar10_policy",
    "svhn_policy",
    "randaugment",
    "randaugment_fixmatch",
    "randaugment2",
    "gaussian_noise",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
)
INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """With probability p, enlarge to 1.125x then crop a random (height, width) window; else resize."""

    def __init__(self, height, width, p=0.5, interpolation=InterpolationMode.BILINEAR):
        self.height, self.width, self.p, self.interpolation = height, width, p, interpolation

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return F.resize(img, [self.height, self.width], interpolation=self.interpolation)
        new_w, new_h = int(round(self.width * 1.125)), int(round(self.height * 1.125))
        img = F.resize(img, [new_h, new_w], interpolation=self.interpolation)
        x1 = int(round(random.uniform(0, new_w - self.width)))
        y1 = int(round(random.uniform(0, new_h - self.height)))
        return F.crop(img, top=y1, left=x1, height=self.height, width=self.width)


class Cutout:
    """Zero `n_holes` random length x length squares of a (C, H, W) tensor."""

    def __init__(self, n_holes=1, length=16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img):
        h, w = img.shape[1:]
        mask = torch.ones(h, w, dtype=img.dtype)
        for _ in range(self.n_holes):
            y, x = random.randrange(h), random.randrange(w)
            half = self.length // 2
            mask[max(0, y - half) : min(h, y + half), max(0, x - half) : min(w, x + half)] = 0
        return img * mask


class GaussianNoise:
    def __init__(self, mean=0.0, std=0.15, p=0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean


class InstanceNormalization:
    """Normalise each channel of one image by its own mean and std."""

    def __init__(self, eps=1e-8):
        self.eps = eps

    def __call__(self, img):
        c = img.shape[0]
        flat = img.reshape(c, -1)
        return (img - flat.mean(1).view(c, 1, 1)) / (flat.std(1).view(c, 1, 1) + self.eps)


class RandomMagnitudeRandAugment:
    """RandAugment with a magnitude drawn per image (stands in for Dassl's fixmatch / v2 variants)."""

    def __init__(self, n):
        self.n = n

    def __call__(self, img):
        return RandAugment(num_ops=self.n, magnitude=random.randint(0, 30))(img)


def _check_names(cfg, choices):
    for name in choices:
        if name not in AVAILABLE_TRANSFORMS:
            raise ValueError(
                unknown_name_message(
                    "transform", name, AVAILABLE_TRANSFORMS, hint="(config key INPUT.TRANSFORMS / flag --transforms)"
                )
            )
    for key, value, choices in (
        ("INTERPOLATION", cfg.INPUT.INTERPOLATION, INTERPOLATION_MODES),
        ("TEST_RESIZE", cfg.INPUT.TEST_RESIZE, TEST_RESIZE_MODES),  # e.g. open_clip's "longest", not built here
    ):
        if value not in choices:
            raise ValueError(unknown_name_message(key.lower(), value, choices, hint=f"(config key INPUT.{key})"))


def build_transform(cfg, is_train=True, choices=None):
    """A torchvision Compose for training (`is_train`) or testing; None when INPUT.NO_TRANSFORM."""
    if cfg.INPUT.NO_TRANSFORM:
        logger.info("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    _check_names(cfg, choices)
    build = _build_transform_train if is_train else _build_transform_test
    return Compose(build(cfg, choices))


def _step(items, line, *tfms):
    logger.info(line)
    items.extend(tfms)


def _build_transform_train(cfg, choices):
    inp = cfg.INPUT
    size, interp = tuple(inp.SIZE), INTERPOLATION_MODES[inp.INTERPOLATION]
    tfms = []
    logger.info("Building transform_train")
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        _step(tfms, f"+ resize to {size[0]}x{size[1]}", Resize(size, interpolation=interp))
    if "random_translation" in choices:
        # bilinear whatever INPUT.INTERPOLATION says, as in Dassl (paper-era numbers depend on it)
        _step(tfms, "+ random translation", Random2DTranslation(size[0], size[1]))
    if "random_crop" in choices:
        _step(tfms, f"+ random crop (padding = {inp.CROP_PADDING})", RandomCrop(size, padding=inp.CROP_PADDING))
    if "random_resized_crop" in choices:
        scale = tuple(inp.RRCROP_SCALE)
        _step(
            tfms,
            f"+ random resized crop (size={size}, scale={scale})",
            RandomResizedCrop(size, scale=scale, interpolation=interp),
        )
    if "random_flip" in choices:
        _step(tfms, "+ random flip", RandomHorizontalFlip())
    for name, policy in (
        ("imagenet", AutoAugmentPolicy.IMAGENET),
        ("cifar10", AutoAugmentPolicy.CIFAR10),
        ("svhn", AutoAugmentPolicy.SVHN),
    ):
        if f"{name}_policy" in choices:
            _step(tfms, f"+ {name} policy", AutoAugment(policy))
    if "randaugment" in choices:
        n, m = inp.RANDAUGMENT_N, inp.RANDAUGMENT_M
        _step(tfms, f"+ randaugment (n={n}, m={m})", DasslRandAugment(n, m))  # Dassl's ops, not torchvision's
    for name in ("randaugment_fixmatch", "randaugment2"):
        if name in choices:
            _step(tfms, f"+ {name} (n={inp.RANDAUGMENT_N})", RandomMagnitudeRandAugment(inp.RANDAUGMENT_N))
    if "colorjitter" in choices:
        b, c, s, h = inp.COLORJITTER_B, inp.COLORJITTER_C, inp.COLORJITTER_S, inp.COLORJITTER_H
        _step(
            tfms,
            f"+ color jitter (brightness={b}, contrast={c}, saturation={s}, hue={h})",
            ColorJitter(brightness=b, contrast=c, saturation=s, hue=h),
        )
    if "randomgrayscale" in choices:
        _step(tfms, "+ random gray scale", RandomGrayscale(p=inp.RGS_P))
    if "gaussian_blur" in choices:
        _step(tfms, f"+ gaussian blur (kernel={inp.GB_K})", RandomApply([GaussianBlur(inp.GB_K)], p=inp.GB_P))
    _step(tfms, "+ to torch tensor of range [0, 1]", ToTensor())
    if "cutout" in choices:
        _step(tfms, f"+ cutout (n_holes={inp.CUTOUT_N}, length={inp.CUTOUT_LEN})", Cutout(inp.CUTOUT_N, inp.CUTOUT_LEN))
    _add_normalization(cfg, choices, tfms, noise=True)
    return tfms


def _build_transform_test(cfg, choices):
    size, interp = tuple(cfg.INPUT.SIZE), INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    tfms = []
    logger.info("Building transform_test")
    if cfg.INPUT.TEST_RESIZE == "squash":  # the whole image, aspect not kept (how SigLIP was evaluated)
        _step(tfms, f"+ resize to {size[0]}x{size[1]} (the whole image, no crop)", Resize(size, interpolation=interp))
    else:
        _step(tfms, f"+ resize the smaller edge to {max(size)}", Resize(max(size), interpolation=interp))
        _step(tfms, f"+ {size[0]}x{size[1]} center crop", CenterCrop(size))
    _step(tfms, "+ to torch tensor of range [0, 1]", ToTensor())
    _add_normalization(cfg, choices, tfms, noise=False)
    return tfms


def _add_normalization(cfg, choices, tfms, noise):
    inp = cfg.INPUT
    if "normalize" in choices:
        _step(
            tfms,
            f"+ normalization (mean={inp.PIXEL_MEAN}, std={inp.PIXEL_STD})",
            Normalize(mean=inp.PIXEL_MEAN, std=inp.PIXEL_STD),
        )
    if noise and "gaussian_noise" in choices:
        _step(tfms, f"+ gaussian noise (mean={inp.GN_MEAN}, std={inp.GN_STD})", GaussianNoise(inp.GN_MEAN, inp.GN_STD))
    if "instance_norm" in choices:
        _step(tfms, "+ instance normalization", InstanceNormalization())
