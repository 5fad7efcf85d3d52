"""ImageNet and its test-only variants: label order, sorted listings, and the errors users hit."""

import os
import shutil

import pytest

from dasslite.data.build import build_dataset

from .conftest import keys, make_cfg
from .layouts import WNIDS, build_imagenet, build_imagenet_a, build_imagenetv2, write_classnames


def test_files_are_listed_sorted_so_the_draw_is_machine_independent(tmp_path):
    build_imagenet(str(tmp_path))
    ds = build_dataset(make_cfg(tmp_path, "ImageNet"))
    for label, wnid in enumerate(sorted(WNIDS)):
        paths = [d.impath for d in ds.train_x if d.label == label]
        assert paths == sorted(paths) and all(f"{os.sep}{wnid}{os.sep}" in p for p in paths)
    assert not (tmp_path / "imagenet" / "preprocessed.pkl").exists()


def test_flat_val_folder_explains_the_wnid_layout(tmp_path):
    build_imagenet(str(tmp_path), flat_val=True)
    with pytest.raises(FileNotFoundError, match="wnid.*valprep.sh.*DATASETS.md#imagenet"):
        build_dataset(make_cfg(tmp_path, "ImageNet"))


def test_val_missing_a_class_keeps_the_other_labels(tmp_path):
    build_imagenet(str(tmp_path))
    shutil.rmtree(tmp_path / "imagenet" / "images" / "val" / sorted(WNIDS)[0])
    ds = build_dataset(make_cfg(tmp_path, "ImageNet"))
    assert sorted({d.label for d in ds.test}) == [1, 2, 3]


def test_imagenet_missing_classnames_file(tmp_path):
    build_imagenet(str(tmp_path))
    (tmp_path / "imagenet" / "classnames.txt").unlink()
    with pytest.raises(FileNotFoundError, match="classnames.txt"):
        build_dataset(make_cfg(tmp_path, "ImageNet"))


def test_variant_without_classnames_file_names_it(tmp_path):
    build_imagenet_a(str(tmp_path))
    path = tmp_path / "imagenet-adversarial" / "classnames.txt"
    path.unlink()
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, "ImageNetA"))
    assert str(path) in str(e.value) and "imagenet/" in str(e.value)


def test_variants_ignore_shots_and_subsample(tmp_path):
    build_imagenet_a(str(tmp_path))
    full = build_dataset(make_cfg(tmp_path, "ImageNetA"))
    ds = build_dataset(make_cfg(tmp_path, "ImageNetA", num_shots=1, subsample="base"))
    assert keys(ds.test) == keys(full.test) and ds.classnames == ["goldfish", "tiger shark"]


def test_imagenetv2_uses_sorted_wnid_order_and_reports_missing_folders(tmp_path):
    build_imagenetv2(str(tmp_path))
    # classnames.txt in another order still maps folder i to the i-th sorted wnid
    write_classnames(str(tmp_path / "imagenetv2" / "classnames.txt"), dict(reversed(list(WNIDS.items()))))
    assert build_dataset(make_cfg(tmp_path, "ImageNetV2")).classnames == list(WNIDS.values())
    shutil.rmtree(tmp_path / "imagenetv2" / "imagenetv2-matched-frequency-format-val" / "3")
    with pytest.raises(FileNotFoundError, match="lacks 1 of the 4 class folders.*e.g. 3"):
        build_dataset(make_cfg(tmp_path, "ImageNetV2"))


def test_variant_folder_missing_from_classnames_file(tmp_path):
    build_imagenet_a(str(tmp_path))
    (tmp_path / "imagenet-adversarial" / "imagenet-a" / "n99999999").mkdir()
    with pytest.raises(ValueError, match="n99999999.*classnames.txt"):
        build_dataset(make_cfg(tmp_path, "ImageNetA"))
