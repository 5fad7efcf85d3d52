"""Every dataset on a miniature copy of its official layout: classes, label order, splits,
base/new halves, split files, and few-shot picks equal to the reference algorithm's."""

import json
import math
import os
import random

import pytest

from dasslite.data.build import DATASET_REGISTRY, build_dataset

from .conftest import keys, make_cfg, reference_fewshot, reference_split_trainval
from .layouts import BUILDERS, FOLDERS, TEST_ONLY, build_dtd, build_oxford_pets

NAMES = sorted(BUILDERS)
FEWSHOT_NAMES = [n for n in NAMES if n not in TEST_ONLY]
NO_SPLIT_FILE = {"FGVCAircraft", "ImageFolder", "ImageNet"}  # official splits or folders: no split_zhou_*.json


def build(tmp_path, name, **kw):
    layout = BUILDERS[name](str(tmp_path))
    return layout, build_dataset(make_cfg(tmp_path, name, **kw))


@pytest.mark.parametrize("name", NAMES)
def test_classes_labels_and_split_sizes(tmp_path, name):
    layout, ds = build(tmp_path, name)
    assert ds.num_classes == len(layout.classnames)
    assert ds.classnames == layout.classnames
    assert ds.lab2cname == dict(enumerate(layout.classnames))
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == layout.sizes
    for items in (ds.train_x, ds.val, ds.test):
        assert all(ds.lab2cname[d.label] == d.classname for d in items)
        assert all(os.path.isfile(d.impath) for d in items)
    if name in TEST_ONLY:
        assert keys(ds.train_x) == keys(ds.test)


@pytest.mark.parametrize("name", [n for n in FEWSHOT_NAMES if n not in NO_SPLIT_FILE])
def test_split_file_written_when_absent_and_read_back(tmp_path, name):
    layout, first = build(tmp_path, name)
    assert layout.split_file
    path = tmp_path / layout.split_file
    split = json.loads(path.read_text())
    assert sorted(split) == ["test", "train", "val"]
    assert all(not os.path.isabs(p) for p, _, _ in split["train"])  # relative, so the folder can move
    second = build_dataset(make_cfg(tmp_path, name, seed=7))  # another seed: read, not regenerated
    for a, b in ((first.train_x, second.train_x), (first.val, second.val), (first.test, second.test)):
        assert keys(a) == keys(b)


@pytest.mark.parametrize("name", FEWSHOT_NAMES)
@pytest.mark.parametrize("subsample", ["base", "new"])
def test_base_new_halves_are_relabelled(tmp_path, name, subsample):
    layout, full = build(tmp_path, name)
    ds = build_dataset(make_cfg(tmp_path, name, subsample=subsample))
    n = len(layout.classnames)
    m = math.ceil(n / 2)
    selected = list(range(m)) if subsample == "base" else list(range(m, n))
    assert ds.classnames == [layout.classnames[y] for y in selected]
    for full_items, items in ((full.train_x, ds.train_x), (full.val, ds.val), (full.test, ds.test)):
        expected = [(d.impath, selected.index(d.label), d.classname) for d in full_items if d.label in selected]
        assert keys(items) == expected


@pytest.mark.parametrize("name", FEWSHOT_NAMES)
@pytest.mark.parametrize("seed", [1, 2])
def test_fewshot_picks_equal_reference(tmp_path, name, seed):
    """With the split in place, the reference seeds the global random and samples train, then val."""
    layout, full = build(tmp_path, name)  # writes the split file where the dataset has one
    shots = 2
    ds = build_dataset(make_cfg(tmp_path, name, num_shots=shots, seed=seed))
    random.seed(seed)
    ref_train = reference_fewshot(full.train_x, shots)
    assert keys(ds.train_x) == keys(ref_train)
    if name == "ImageNet":  # the reference draws only train; val = test = the full val set
        assert keys(ds.val) == keys(ds.test) == keys(full.test)
    else:
        assert keys(ds.val) == keys(reference_fewshot(full.val, min(shots, 4)))
        assert keys(ds.test) == keys(full.test)
    cache = tmp_path / layout.folder / "split_fewshot" / f"shot_{shots}-seed_{seed}.json"
    assert cache.is_file()
    again = build_dataset(make_cfg(tmp_path, name, num_shots=shots, seed=seed))  # from the cache
    assert keys(again.train_x) == keys(ds.train_x) and keys(again.val) == keys(ds.val)


def test_generated_split_then_fewshot_follow_the_reference_stream(tmp_path):
    """No split file: the reference shuffles per class to split, then samples, on one seeded stream."""
    build_oxford_pets(str(tmp_path))
    ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=3))
    trainval = _pets_list(tmp_path, "trainval.txt")
    random.seed(3)
    ref_train, ref_val = reference_split_trainval(trainval)
    assert keys(ds.train_x) == keys(reference_fewshot(ref_train, 2))
    assert keys(ds.val) == keys(reference_fewshot(ref_val, 2))
    split = json.loads((tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json").read_text())
    assert [p for p, _, _ in split["train"]] == [os.path.basename(d.impath) for d in ref_train]


def _pets_list(root, split_file):
    from dasslite.data.datum import Datum

    items = []
    for line in (root / "oxford_pets" / "annotations" / split_file).read_text().splitlines():
        imname, label = line.split()[:2]
        impath = str(root / "oxford_pets" / "images" / (imname + ".jpg"))
        items.append(Datum(impath=impath, label=int(label) - 1, classname="_".join(imname.split("_")[:-1]).lower()))
    return items


def test_generated_folder_split_follows_the_reference_with_sorted_listing(tmp_path):
    build_dtd(str(tmp_path))
    ds = build_dataset(make_cfg(tmp_path, "DescribableTextures", seed=5))
    image_dir = tmp_path / "dtd" / "images"
    random.seed(5)
    ref_train = []
    for label, cat in enumerate(sorted(os.listdir(image_dir))):
        ims = [str(image_dir / cat / f) for f in sorted(os.listdir(image_dir / cat))]
        random.shuffle(ims)
        ref_train += [(p, label, cat) for p in ims[: round(len(ims) * 0.5)]]
    assert keys(ds.train_x) == ref_train


@pytest.mark.parametrize("name", [n for n in NAMES if n != "ImageFolder"])
def test_missing_dataset_folder_names_it_and_the_docs(tmp_path, name):
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, name))
    assert str(tmp_path / FOLDERS[name]) in str(e.value)
    assert "DATASETS.md#" in str(e.value)


def test_split_file_naming_missing_images_lists_them(tmp_path):
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    gone = [tmp_path / "oxford_pets" / "images" / f"Bengal_10{i}.jpg" for i in range(7)]
    for p in gone:
        p.unlink()
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, "OxfordPets"))
    msg = str(e.value)
    assert "7 of the 35 images" in msg and "split_zhou_OxfordPets.json" in msg
    assert "... and 2 more" in msg and str(tmp_path / "oxford_pets" / "images") in msg


def test_missing_annotation_file_without_split_file(tmp_path):
    build_oxford_pets(str(tmp_path))
    (tmp_path / "oxford_pets" / "annotations" / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt.*DATASETS.md#oxfordpets"):
        build_dataset(make_cfg(tmp_path, "OxfordPets"))


def test_split_file_alone_needs_no_annotation_files(tmp_path):
    build_oxford_pets(str(tmp_path))
    first = build_dataset(make_cfg(tmp_path, "OxfordPets"))
    for f in (tmp_path / "oxford_pets" / "annotations").iterdir():
        f.unlink()
    assert keys(build_dataset(make_cfg(tmp_path, "OxfordPets")).train_x) == keys(first.train_x)


def test_unknown_subsample_value(tmp_path):
    build_dtd(str(tmp_path))
    with pytest.raises(ValueError, match="DATASET.SUBSAMPLE_CLASSES.*all, base, new"):
        build_dataset(make_cfg(tmp_path, "DescribableTextures", subsample="half"))


def test_every_reference_name_is_registered():
    reference = {
        "Caltech101",
        "DescribableTextures",
        "EuroSAT",
        "FGVCAircraft",
        "Food101",
        "ImageNet",
        "ImageNetA",
        "ImageNetR",
        "ImageNetSketch",
        "ImageNetV2",
        "OxfordFlowers",
        "OxfordPets",
        "StanfordCars",
        "SUN397",
        "UCF101",
    }
    assert reference | {"ImageFolder"} <= set(DATASET_REGISTRY.registered_names())
