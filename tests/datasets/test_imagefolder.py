"""A user's own image folder as a dataset (DATASET.NAME ImageFolder, DATASET.ROOT = the folder)."""

import random

import pytest

from dasslite.data.build import build_dataset

from .conftest import keys, make_cfg, reference_fewshot
from .layouts import build_imagefolder, write_text


def test_class_names_file_and_sorted_labels(tmp_path):
    build_imagefolder(str(tmp_path))
    ds = build_dataset(make_cfg(tmp_path, "ImageFolder"))
    assert ds.classnames == ["house cat", "dog", "zebra"]  # folders cat, dog_breed, zebra
    assert not any(d.impath.endswith(".txt") for d in ds.train_x)


def test_without_class_names_file_uses_folder_names(tmp_path):
    build_imagefolder(str(tmp_path), classnames=False)
    assert build_dataset(make_cfg(tmp_path, "ImageFolder")).classnames == ["cat", "dog_breed", "zebra"]


def test_val_folder_is_used_when_present(tmp_path):
    build_imagefolder(str(tmp_path), val=True)
    ds = build_dataset(make_cfg(tmp_path, "ImageFolder"))
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (15, 3, 3)
    assert all("/val/" in d.impath for d in ds.val)


def test_held_out_val_is_the_same_for_every_seed(tmp_path):
    build_imagefolder(str(tmp_path))
    a = build_dataset(make_cfg(tmp_path, "ImageFolder", seed=1))
    b = build_dataset(make_cfg(tmp_path, "ImageFolder", seed=2))
    assert keys(a.val) == keys(b.val) and keys(a.train_x) == keys(b.train_x)


def test_fewshot_and_base_new(tmp_path):
    build_imagefolder(str(tmp_path), val=True)
    full = build_dataset(make_cfg(tmp_path, "ImageFolder"))
    ds = build_dataset(make_cfg(tmp_path, "ImageFolder", num_shots=2, seed=9))
    random.seed(9)
    assert keys(ds.train_x) == keys(reference_fewshot(full.train_x, 2))
    new = build_dataset(make_cfg(tmp_path, "ImageFolder", subsample="new"))
    assert new.classnames == ["zebra"] and {d.label for d in new.test} == {0}


def test_wrong_line_count_in_class_names_file(tmp_path):
    build_imagefolder(str(tmp_path))
    write_text(str(tmp_path / "classnames.txt"), ["cat house cat", "zebra zebra"])
    with pytest.raises(ValueError, match=r"classnames.txt has 2 non-empty lines but train/ has 3 class folders"):
        build_dataset(make_cfg(tmp_path, "ImageFolder"))


def test_class_names_file_missing_a_folder(tmp_path):
    build_imagefolder(str(tmp_path))
    write_text(str(tmp_path / "classnames.txt"), ["cat house cat", "zebra zebra", "dog dog"])
    with pytest.raises(ValueError, match="dog_breed"):
        build_dataset(make_cfg(tmp_path, "ImageFolder"))


def test_missing_train_or_test_and_unknown_class(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.*DATASETS.md#imagefolder"):
        build_dataset(make_cfg(tmp_path, "ImageFolder"))
    build_imagefolder(str(tmp_path))
    (tmp_path / "test" / "okapi").mkdir()
    with pytest.raises(ValueError, match="okapi"):
        build_dataset(make_cfg(tmp_path, "ImageFolder"))
