"""A split file is trusted only when every label is in range and agrees with its
class name and every image path stays inside the dataset folder; otherwise the error names the
file, the split and the index of the entry."""

import json
import re

import pytest

from dasslite.data.build import build_dataset
from dasslite.data.splits import SplitFileError
from dasslite.errors import UserError
from tests.datasets.conftest import make_cfg
from tests.datasets.layouts import build_oxford_pets


@pytest.fixture
def pets_split(tmp_path):
    """A valid Oxford Pets split file (made from the annotations) and a function to rewrite it."""
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    path = tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json"
    split = json.loads(path.read_text())

    def rewrite(name, index, record):
        changed = {k: [list(r) for r in v] for k, v in split.items()}
        changed[name][index] = record(changed[name][index])
        path.write_text(json.dumps(changed))
        return path

    return split, rewrite


def refused(tmp_path, *fragments):
    with pytest.raises(SplitFileError) as info:
        build_dataset(make_cfg(tmp_path, "OxfordPets"))
    assert isinstance(info.value, UserError)  # train.py prints it as one `error:` line
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return str(info.value)


def test_split_file_label_out_of_range_is_refused(tmp_path, pets_split):
    path = pets_split[1]("test", 1, lambda r: [r[0], 99, r[2]])
    msg = refused(tmp_path, str(path), 'entry 1 of "test"', "label 99")
    assert re.search(r"labels must be 0\.\.\d+", msg)


def test_split_file_label_inconsistent_with_class_name_is_refused(tmp_path, pets_split):
    split, rewrite = pets_split
    other = next(r for r in split["train"] if r[1] != split["val"][0][1])
    path = rewrite("val", 0, lambda r: [r[0], other[1], r[2]])
    refused(tmp_path, str(path), 'entry 0 of "val"', f'"{other[2]}" elsewhere')


def test_split_file_class_name_under_two_labels_is_refused(tmp_path, pets_split):
    split, rewrite = pets_split
    other = next(r for r in split["train"] if r[1] != split["test"][2][1])
    path = rewrite("test", 2, lambda r: [r[0], r[1], other[2]])
    refused(tmp_path, str(path), 'entry 2 of "test"')


@pytest.mark.parametrize("bad", ["/etc/passwd", "../../outside.jpg", "images/../../x.jpg", "C:\\x.jpg"])
def test_split_file_path_outside_the_dataset_folder_is_refused(tmp_path, pets_split, bad):
    path = pets_split[1]("train", 3, lambda r: [bad, r[1], r[2]])
    refused(tmp_path, str(path), 'entry 3 of "train"', bad, "outside the dataset folder")


@pytest.mark.parametrize("record", [["a.jpg", 0], "a.jpg", ["a.jpg", "0", "x"], ["a.jpg", 1.5, "x"]])
def test_split_file_malformed_entry_is_refused(tmp_path, pets_split, record):
    path = pets_split[1]("val", 1, lambda r: record)
    refused(tmp_path, str(path), 'entry 1 of "val"')


def test_split_file_that_is_not_an_object_of_lists_is_refused(tmp_path, pets_split):
    path = tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json"
    for content in ("[]", '{"train": [], "val": []}', "{ truncated"):
        path.write_text(content)
        refused(tmp_path, str(path))
