"""Miniature copies of every benchmark's official layout: real annotation formats, tiny images.

Each builder writes its dataset under `root` and returns a `Layout` with what a correct reader
must produce: class names in label order and the (train, val, test) sizes of the full split.
"""

import io
import json
import os
from dataclasses import dataclass

from PIL import Image

WNIDS = {  # sorted wnid order = ImageNet label order
    "n01440764": "tench",
    "n01443537": "goldfish",
    "n01484850": "great white shark",
    "n01491361": "tiger shark",
}


@dataclass
class Layout:
    name: str  # DATASET.NAME
    classnames: list  # in label order
    sizes: tuple  # (train, val, test) of the full split
    split_file: str = ""  # relative to ROOT; "" when the dataset has none
    folder: str = ""  # the dataset folder under ROOT ("" = ROOT itself)


_JPEG = None


def jpeg_bytes():
    global _JPEG
    if _JPEG is None:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (120, 30, 200)).save(buf, format="JPEG")
        _JPEG = buf.getvalue()
    return _JPEG


def write_image(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(jpeg_bytes())


def write_text(path, lines, newline="\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write("".join(line + newline for line in lines))


def build_oxford_pets(root):
    d = os.path.join(root, "oxford_pets")
    breeds = [
        ("Abyssinian", 1),
        ("american_bulldog", 2),
        ("american_pit_bull_terrier", 2),
        ("basset_hound", 2),
        ("Bengal", 1),
    ]
    trainval, test = [], []
    for cid, (breed, species) in enumerate(breeds, start=1):
        for i in range(7):
            imname = f"{breed}_{100 + i}"
            write_image(os.path.join(d, "images", imname + ".jpg"))
            (trainval if i < 5 else test).append(f"{imname} {cid} {species} {cid}")
    # Interleave the classes so first-appearance order is not label order.
    trainval = trainval[::-1]
    write_text(os.path.join(d, "annotations", "trainval.txt"), trainval)
    write_text(os.path.join(d, "annotations", "test.txt"), test)
    names = ["abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "bengal"]
    return Layout("OxfordPets", names, (20, 5, 10), "oxford_pets/split_zhou_OxfordPets.json", "oxford_pets")


def _class_folders(image_dir, folders, n=5, ext=".jpg"):
    for folder in folders:
        for i in range(n):
            write_image(os.path.join(image_dir, folder, f"img_{i:04d}{ext}"))


def build_caltech101(root):
    image_dir = os.path.join(root, "caltech-101", "101_ObjectCategories")
    _class_folders(
        image_dir, ["BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "accordion", "airplanes", "anchor"]
    )
    names = ["face", "leopard", "accordion", "airplane", "anchor"]  # case-sensitive sort: capitals first
    return Layout("Caltech101", names, (10, 5, 10), "caltech-101/split_zhou_Caltech101.json", "caltech-101")


def build_dtd(root):
    _class_folders(os.path.join(root, "dtd", "images"), ["braided", "banded", "blotchy"])
    return Layout(
        "DescribableTextures",
        ["banded", "blotchy", "braided"],
        (6, 3, 6),
        "dtd/split_zhou_DescribableTextures.json",
        "dtd",
    )


def build_eurosat(root):
    _class_folders(os.path.join(root, "eurosat", "2750"), ["SeaLake", "AnnualCrop", "Forest"])
    return Layout(
        "EuroSAT",
        ["Annual Crop Land", "Forest", "Sea or Lake"],
        (6, 3, 6),
        "eurosat/split_zhou_EuroSAT.json",
        "eurosat",
    )


def build_food101(root):
    _class_folders(os.path.join(root, "food-101", "images"), ["apple_pie", "baby_back_ribs", "baklava"], n=6)
    # 6 per class: round(3.0)=3 train, round(1.2)=1 val, 2 test
    return Layout(
        "Food101", ["apple_pie", "baby_back_ribs", "baklava"], (9, 3, 6), "food-101/split_zhou_Food101.json", "food-101"
    )


def build_oxford_flowers(root):
    from scipy.io import savemat

    d = os.path.join(root, "oxford_flowers")
    labels = [2, 1, 3] * 5  # 1-based, first appearance 2, 1, 3
    for i in range(len(labels)):
        write_image(os.path.join(d, "jpg", f"image_{i + 1:05d}.jpg"))
    savemat(os.path.join(d, "imagelabels.mat"), {"labels": [[float(y) for y in labels]]})
    names = {"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"}
    with open(os.path.join(d, "cat_to_name.json"), "w") as f:
        json.dump(names, f)
    return Layout(
        "OxfordFlowers",
        [names["1"], names["2"], names["3"]],
        (6, 3, 6),
        "oxford_flowers/split_zhou_OxfordFlowers.json",
        "oxford_flowers",
    )


def _cars_annos(labels):
    import numpy as np

    dtype = [(k, "O") for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")]
    arr = np.zeros((1, len(labels)), dtype=dtype)
    for i, y in enumerate(labels):
        arr[0, i] = (
            np.array([[1]]),
            np.array([[1]]),
            np.array([[7]]),
            np.array([[7]]),
            np.array([[y]], dtype=np.uint8),
            np.array([f"{i + 1:05d}.jpg"]),
        )
    return arr


def build_stanford_cars(root):
    import numpy as np
    from scipy.io import savemat

    d = os.path.join(root, "stanford_cars")
    meta = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Tesla Model S Sedan 2012"]
    class_names = np.empty((1, len(meta)), dtype=object)
    for i, name in enumerate(meta):
        class_names[0, i] = np.array([name])
    os.makedirs(os.path.join(d, "devkit"), exist_ok=True)
    savemat(os.path.join(d, "devkit", "cars_meta.mat"), {"class_names": class_names})
    train_labels, test_labels = [1, 2, 3] * 5, [3, 2, 1] * 2
    savemat(os.path.join(d, "devkit", "cars_train_annos.mat"), {"annotations": _cars_annos(train_labels)})
    savemat(os.path.join(d, "cars_test_annos_withlabels.mat"), {"annotations": _cars_annos(test_labels)})
    for sub, labels in (("cars_train", train_labels), ("cars_test", test_labels)):
        for i in range(len(labels)):
            write_image(os.path.join(d, sub, f"{i + 1:05d}.jpg"))
    names = ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Tesla Model S Sedan"]
    return Layout("StanfordCars", names, (12, 3, 6), "stanford_cars/split_zhou_StanfordCars.json", "stanford_cars")


def build_fgvc_aircraft(root):
    d = os.path.join(root, "fgvc_aircraft")
    variants = ["707-320", "A300B4", "Cessna 172", "F-16A/B"]
    write_text(os.path.join(d, "variants.txt"), variants)
    imid = 1000000
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        lines = []
        for _ in range(n):
            for v in variants[::-1]:
                imid += 1
                write_image(os.path.join(d, "images", f"{imid:07d}.jpg"))
                lines.append(f"{imid:07d} {v}")
        write_text(os.path.join(d, f"images_variant_{split}.txt"), lines)
    return Layout("FGVCAircraft", variants, (12, 8, 8), "", "fgvc_aircraft")


def build_sun397(root):
    d = os.path.join(root, "sun397")
    classes = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"]
    write_text(os.path.join(d, "ClassName.txt"), classes)
    train, test = [], []
    for c in classes:
        for i in range(7):
            rel = f"{c}/sun_{c.replace('/', '')}{i:03d}.jpg"
            write_image(os.path.join(d, "SUN397", rel[1:]))
            (train if i < 5 else test).append(rel)
    write_text(os.path.join(d, "Training_01.txt"), train)
    write_text(os.path.join(d, "Testing_01.txt"), test)
    return Layout(
        "SUN397",
        ["abbey", "outdoor apartment_building", "shop bakery"],
        (12, 3, 6),
        "sun397/split_zhou_SUN397.json",
        "sun397",
    )


def build_ucf101(root):
    d = os.path.join(root, "ucf101")
    actions = ["ApplyEyeMakeup", "ApplyLipstick", "YoYo"]
    lists = os.path.join(d, "ucfTrainTestlist")
    # The official lists use Windows line ends.
    write_text(os.path.join(lists, "classInd.txt"), [f"{i} {a}" for i, a in enumerate(actions, 1)], "\r\n")
    train, test = [], []
    for label, action in enumerate(actions, 1):
        folder = "_".join(
            {
                "ApplyEyeMakeup": ["Apply", "Eye", "Makeup"],
                "ApplyLipstick": ["Apply", "Lipstick"],
                "YoYo": ["Yo", "Yo"],
            }[action]
        )
        for g in range(7):
            video = f"v_{action}_g{g + 1:02d}_c01"
            write_image(os.path.join(d, "UCF-101-midframes", folder, video + ".jpg"))
            if g < 5:
                train.append(f"{action}/{video}.avi {label}")
            else:
                test.append(f"{action}/{video}.avi")
    write_text(os.path.join(lists, "trainlist01.txt"), train, "\r\n")
    write_text(os.path.join(lists, "testlist01.txt"), test, "\r\n")
    return Layout(
        "UCF101", ["Apply_Eye_Makeup", "Apply_Lipstick", "Yo_Yo"], (12, 3, 6), "ucf101/split_zhou_UCF101.json", "ucf101"
    )


def write_classnames(path, wnids=WNIDS):
    write_text(path, [f"{w} {n}" for w, n in wnids.items()])


def build_imagenet(root, flat_val=False):
    d = os.path.join(root, "imagenet")
    write_classnames(os.path.join(d, "classnames.txt"))
    k = 0
    for wnid in list(WNIDS)[::-1]:
        for i in (9, 3, 27, 1, 14, 5):  # unsorted creation order
            write_image(os.path.join(d, "images", "train", wnid, f"{wnid}_{i}.JPEG"))
        for _ in range(2):
            k += 1
            sub = "" if flat_val else wnid
            write_image(os.path.join(d, "images", "val", sub, f"ILSVRC2012_val_{k:08d}.JPEG"))
    return Layout("ImageNet", list(WNIDS.values()), (24, 8, 8), "", "imagenet")


def build_imagenetv2(root):
    d = os.path.join(root, "imagenetv2")
    write_classnames(os.path.join(d, "classnames.txt"))
    for label in range(len(WNIDS)):
        for i in range(3):
            write_image(os.path.join(d, "imagenetv2-matched-frequency-format-val", str(label), f"{i:x}a7.jpeg"))
    return Layout("ImageNetV2", list(WNIDS.values()), (12, 0, 12), "", "imagenetv2")


def _variant(root, folder, sub, wnids, name, readme=False):
    d = os.path.join(root, folder)
    write_classnames(os.path.join(d, "classnames.txt"))
    for wnid in wnids:
        for i in range(3):
            write_image(os.path.join(d, sub, wnid, f"{i}.jpg"))
    if readme:
        write_text(os.path.join(d, sub, "README.txt"), ["not a class"])
    return Layout(name, [WNIDS[w] for w in sorted(wnids)], (3 * len(wnids), 0, 3 * len(wnids)), "", folder)


def build_imagenet_sketch(root):
    return _variant(root, "imagenet-sketch", "images", list(WNIDS), "ImageNetSketch")


def build_imagenet_a(root):
    # A subset of the classes (200 of 1000 in the real one): labels 0.. over the folders present.
    return _variant(root, "imagenet-adversarial", "imagenet-a", ["n01491361", "n01443537"], "ImageNetA", True)


def build_imagenet_r(root):
    return _variant(
        root, "imagenet-rendition", "imagenet-r", ["n01484850", "n01440764", "n01443537"], "ImageNetR", True
    )


def build_imagefolder(root, val=False, classnames=True):
    """root/{train,test[,val]}/<class>/*; 5 train images per class."""
    classes = ["zebra", "cat", "dog_breed"]
    for c in classes:
        for i in range(5):
            write_image(os.path.join(root, "train", c, f"{i}.png" if i % 2 else f"{i}.JPG"))
        write_image(os.path.join(root, "test", c, "t.jpg"))
        if val:
            write_image(os.path.join(root, "val", c, "v.jpeg"))
    write_text(os.path.join(root, "train", "cat", "notes.txt"), ["not an image"])
    if classnames:
        write_text(os.path.join(root, "classnames.txt"), ["dog_breed dog", "cat house cat", "zebra zebra"])
        names = ["house cat", "dog", "zebra"]
    else:
        names = ["cat", "dog_breed", "zebra"]
    sizes = (15, 3, 3) if val else (12, 3, 3)
    return Layout("ImageFolder", names, sizes, "", "")


BUILDERS = {
    "Caltech101": build_caltech101,
    "DescribableTextures": build_dtd,
    "EuroSAT": build_eurosat,
    "FGVCAircraft": build_fgvc_aircraft,
    "Food101": build_food101,
    "ImageNet": build_imagenet,
    "ImageNetA": build_imagenet_a,
    "ImageNetR": build_imagenet_r,
    "ImageNetSketch": build_imagenet_sketch,
    "ImageNetV2": build_imagenetv2,
    "OxfordFlowers": build_oxford_flowers,
    "OxfordPets": build_oxford_pets,
    "StanfordCars": build_stanford_cars,
    "SUN397": build_sun397,
    "UCF101": build_ucf101,
    "ImageFolder": build_imagefolder,
}
FOLDERS = {  # the dataset folder under DATASET.ROOT (docs/reference-behaviour.md, "Benchmark folders")
    "Caltech101": "caltech-101",
    "DescribableTextures": "dtd",
    "EuroSAT": "eurosat",
    "FGVCAircraft": "fgvc_aircraft",
    "Food101": "food-101",
    "ImageNet": "imagenet",
    "ImageNetA": "imagenet-adversarial",
    "ImageNetR": "imagenet-rendition",
    "ImageNetSketch": "imagenet-sketch",
    "ImageNetV2": "imagenetv2",
    "OxfordFlowers": "oxford_flowers",
    "OxfordPets": "oxford_pets",
    "StanfordCars": "stanford_cars",
    "SUN397": "sun397",
    "UCF101": "ucf101",
    "ImageFolder": "",
}
TEST_ONLY = ("ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")
