"""Dassl's RandAugment (INPUT.TRANSFORMS "randaugment"), not torchvision's: another list of operations and
another magnitude scale, so a run that augments with it (CoPrompt's two RandAugment views) learns what
it learns on Dassl.

Facts from dassl/data/transforms/randaugment.py (class RandAugment): n operations drawn with
`random.choices` from the 16 below, each applied with the value (m / 30) * (max - min) + min; the
geometric ones flip their sign when `random.random() > 0.5`; the cutout's centre is
`np.random.uniform(size)` (numpy's low=size, high=1.0: a value in (1, size]).
"""

import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

CUTOUT_COLOUR = (125, 123, 114)


def _signed(v):
    return -v if random.random() > 0.5 else v


def _affine(img, coefficients):
    return img.transform(img.size, Image.AFFINE, coefficients)


def _solarize_add(img, addition, threshold=128):
    added = np.clip(np.array(img).astype(np.int64) + addition, 0, 255).astype(np.uint8)
    return ImageOps.solarize(Image.fromarray(added), threshold)


def _cutout(img, v):
    w, h = img.size
    x0, y0 = np.random.uniform(w), np.random.uniform(h)
    x0, y0 = int(max(0, x0 - v / 2.0)), int(max(0, y0 - v / 2.0))
    img = img.copy()
    ImageDraw.Draw(img).rectangle((x0, y0, min(w, x0 + v), min(h, y0 + v)), CUTOUT_COLOUR)
    return img


# (operation(img, value), min, max), in Dassl's order (random.choices draws by index)
OPERATIONS = (
    (lambda img, v: ImageOps.autocontrast(img), 0, 1),
    (lambda img, v: ImageOps.equalize(img), 0, 1),
    (lambda img, v: ImageOps.invert(img), 0, 1),
    (lambda img, v: img.rotate(_signed(v)), 0, 30),
    (lambda img, v: ImageOps.posterize(img, int(v)), 4, 8),
    (lambda img, v: ImageOps.solarize(img, v), 0, 256),
    (_solarize_add, 0, 110),
    (lambda img, v: ImageEnhance.Color(img).enhance(v), 0.1, 1.9),
    (lambda img, v: ImageEnhance.Contrast(img).enhance(v), 0.1, 1.9),
    (lambda img, v: ImageEnhance.Brightness(img).enhance(v), 0.1, 1.9),
    (lambda img, v: ImageEnhance.Sharpness(img).enhance(v), 0.1, 1.9),
    (lambda img, v: _affine(img, (1, _signed(v), 0, 0, 1, 0)), 0.0, 0.3),  # shear x
    (lambda img, v: _affine(img, (1, 0, 0, _signed(v), 1, 0)), 0.0, 0.3),  # shear y
    (lambda img, v: _cutout(img, v) if v >= 0 else img, 0, 40),
    (lambda img, v: _affine(img, (1, 0, _signed(v), 0, 1, 0)), 0.0, 100),  # translate x (pixels)
    (lambda img, v: _affine(img, (1, 0, 0, 0, 1, _signed(v))), 0.0, 100),  # translate y (pixels)
)


class DasslRandAugment:
    """n operations of OPERATIONS at magnitude m (0..30) on a PIL image."""

    def __init__(self, n=2, m=10):
        if not 0 <= m <= 30:
            raise ValueError(f"INPUT.RANDAUGMENT_M must be between 0 and 30, got {m}")
        self.n, self.m = n, m

    def __call__(self, img):
        for op, low, high in random.choices(OPERATIONS, k=self.n):
            img = op(img, (self.m / 30) * (high - low) + low)
        return img

    def __repr__(self):
        return f"DasslRandAugment(n={self.n}, m={self.m})"
