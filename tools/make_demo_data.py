"""Generate the offline demo's image set: coloured shapes in the ImageFolder layout (DATASETS.md#imagefolder).

    python -m tools.make_demo_data OUT [--train 16] [--val 4] [--test 10] [--size 64] [--seed 0]

Ten classes, one per (colour, shape) pair, named with words CLIP's tokenizer knows ("red circle", ...).
Labels follow the sorted folder names, so base-to-new puts the first five classes in "base" and the
last five in "new". Each image is a shape of the class colour at a random place and size on a noisy
grey background: easy to learn, so a working pipeline shows above-chance accuracy even with a tiny
random CLIP. Writes OUT/{train,val,test}/<class>/*.png and OUT/classnames.txt.
"""

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

# folder name -> (RGB colour, shape). Sorted folder order = label order (base: the first half).
CLASSES = {
    "black_square": ((20, 20, 20), "square"),
    "blue_circle": ((30, 60, 220), "circle"),
    "brown_triangle": ((120, 70, 20), "triangle"),
    "green_square": ((30, 170, 40), "square"),
    "orange_circle": ((250, 140, 0), "circle"),
    "pink_triangle": ((250, 120, 190), "triangle"),
    "purple_square": ((130, 40, 170), "square"),
    "red_circle": ((220, 30, 30), "circle"),
    "white_triangle": ((245, 245, 245), "triangle"),
    "yellow_square": ((240, 220, 30), "square"),
}
SPLITS = ("train", "val", "test")


def draw_image(colour, shape, size, rng):
    """One size x size RGB image: the shape in `colour` (slightly jittered) on a noisy grey background."""
    background = rng.integers(90, 160, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    extent = int(size * rng.uniform(0.45, 0.8))
    x0, y0 = (int(v) for v in rng.integers(0, size - extent + 1, size=2))
    box = [x0, y0, x0 + extent, y0 + extent]
    fill = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in colour)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x0 + extent // 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=fill)
    return image


def make_demo_data(out, n_train=16, n_val=4, n_test=10, size=64, seed=0):
    """Write the data set under `out`; returns the folder. Same arguments, same images."""
    rng = np.random.default_rng(seed)
    counts = dict(zip(SPLITS, (n_train, n_val, n_test)))
    for split, count in counts.items():
        for folder, (colour, shape) in CLASSES.items():
            class_dir = os.path.join(out, split, folder)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(count):
                draw_image(colour, shape, size, rng).save(os.path.join(class_dir, f"{i:03d}.png"))
    with open(os.path.join(out, "classnames.txt"), "w") as f:
        f.writelines(f"{folder} {folder.replace('_', ' ')}\n" for folder in CLASSES)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to write (the ImageFolder root)")
    parser.add_argument("--train", type=int, default=16, help="training images per class")
    parser.add_argument("--val", type=int, default=4, help="validation images per class")
    parser.add_argument("--test", type=int, default=10, help="test images per class")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_demo_data(args.out, args.train, args.val, args.test, args.size, args.seed)


if __name__ == "__main__":
    main()
