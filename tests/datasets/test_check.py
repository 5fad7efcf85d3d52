"""check_data.py on miniature copies of every benchmark: a correct layout, each known mistake (and its fix,
run), a missing and a corrupt image, the published sizes it compares with, and the check a run makes."""

import dataclasses
import json
import os
import shutil
import subprocess
import tarfile

import pytest

import check_data
import train
from coop_toolkit.datasets import catalog
from coop_toolkit.datasets.check import FOUND, INCOMPLETE, MISSING, check_dataset, check_datasets, format_reports
from dasslite.cli import run_cli
from dasslite.data.build import build_dataset
from dasslite.errors import DataError

from .conftest import make_cfg
from .layouts import BUILDERS, TEST_ONLY, build_dtd, build_food101, build_imagenet, build_sun397, write_image

NAMES = sorted(n for n in BUILDERS if n != "ImageFolder")
# The published splits (CoOp's dataset table, docs: SPEC 5.2) and the variants' own pages: train / val / test.
PUBLISHED = {
    "ImageNet": ("1,281,167", None, "50,000"),
    "Caltech101": ("4,128", "1,649", "2,465"),
    "OxfordPets": ("2,944", "736", "3,669"),
    "StanfordCars": ("6,509", "1,635", "8,041"),
    "OxfordFlowers": ("4,093", "1,633", "2,463"),
    "Food101": ("50,500", "20,200", "30,300"),
    "FGVCAircraft": ("3,334", "3,333", "3,333"),
    "SUN397": ("15,880", "3,970", "19,850"),
    "DescribableTextures": ("2,820", "1,128", "1,692"),
    "EuroSAT": ("13,500", "5,400", "8,100"),
    "UCF101": ("7,639", "1,898", "3,783"),
    "ImageNetV2": (None, None, "10,000"),
    "ImageNetSketch": (None, None, "50,889"),
    "ImageNetA": (None, None, "7,500"),
    "ImageNetR": (None, None, "30,000"),
}


def miniature_sizes(layout):
    """The layout's (train, val, test) in the check's terms: ImageNet has no val of its own, the
    variants only a test split."""
    train, val, test = layout.sizes
    if layout.name in TEST_ONLY:
        return (None, None, test)
    return (train, None, test) if layout.name == "ImageNet" else (train, val, test)


@pytest.fixture
def as_published(monkeypatch):
    """Make a miniature layout's sizes the 'published' ones, so that a correct layout checks clean."""

    def apply(layout):
        b = catalog.BENCHMARKS[layout.name]
        sizes = miniature_sizes(layout)
        monkeypatch.setitem(
            catalog.BENCHMARKS, b.name, dataclasses.replace(b, sizes=sizes, num_classes=len(layout.classnames))
        )

    return apply


def found(report):
    return tuple(report.found.get(s) for s in ("train", "val", "test"))


@pytest.mark.parametrize("name", NAMES)
def test_a_correct_layout_is_found_with_its_sizes(tmp_path, name, as_published):
    layout = BUILDERS[name](str(tmp_path))
    build_dataset(make_cfg(tmp_path, name))  # writes the split file where the dataset has one
    as_published(layout)
    report = check_dataset(tmp_path, name)
    assert report.status == FOUND and report.usable
    assert report.problems == [] and report.notes == []
    assert found(report) == miniature_sizes(layout)
    assert report.num_classes == len(layout.classnames)
    expected_split = "present" if layout.split_file else ("official lists" if name == "FGVCAircraft" else "none needed")
    assert report.split_file == expected_split


def test_the_sizes_printed_are_the_published_ones(tmp_path):
    for name in NAMES:
        BUILDERS[name](str(tmp_path))
    text = format_reports(check_datasets(tmp_path))
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:17]}
    for name, published in PUBLISHED.items():
        cells = rows[name][2:5]
        for cell, ref in zip(cells, published):
            assert cell == "-" if ref is None else cell.endswith("/" + ref), (name, cells)


def test_a_published_size_split_checks_clean(tmp_path):
    """DTD at its real size: 5,640 images named by a split file of 2,820 / 1,128 / 1,692 entries."""
    classes = [f"class{c:02d}" for c in range(47)]
    split, n = {"train": [], "val": [], "test": []}, 0
    for part, size in (("train", 2820), ("val", 1128), ("test", 1692)):
        for i in range(size):
            c = n % 47
            rel = f"{classes[c]}/{part}_{i}.jpg"
            write_image(str(tmp_path / "dtd" / "images" / rel))
            split[part].append([rel, c, classes[c]])
            n += 1
    (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").write_text(json.dumps(split))
    report = check_dataset(tmp_path, "dtd")
    assert report.usable and report.notes == []
    assert found(report) == (2820, 1128, 1692) and report.num_classes == 47
    assert "2,820/2,820" in format_reports([report])


def test_without_a_split_file_it_says_where_to_get_the_published_one(tmp_path):
    build_dtd(str(tmp_path))
    report = check_dataset(tmp_path, "dtd")
    assert report.usable and report.split_file == "absent"
    assert any(catalog.BENCHMARKS["DescribableTextures"].split_url in n for n in report.notes)


@pytest.mark.parametrize("where", ["", "dtd/images"])
def test_a_split_file_in_the_wrong_folder(tmp_path, where):
    """Left in the data root or the image folder, it would be ignored and another split made."""
    layout = build_dtd(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "DescribableTextures"))
    shutil.move(tmp_path / layout.split_file, tmp_path / where)
    report = check_dataset(tmp_path, "dtd")
    assert report.status == INCOMPLETE and report.split_file == "misplaced"
    assert report.problems[0].fix.startswith("mv ")
    subprocess.run(["bash", "-c", report.problems[0].fix], check=True)
    assert check_dataset(tmp_path, "dtd").split_file == "present"


def test_a_missing_dataset(tmp_path):
    report = check_dataset(tmp_path, "oxford_pets")
    assert report.status == MISSING and not report.usable
    assert "prepare_data.py oxford_pets" in report.problems[0].fix


def run_fix(fix):
    """Run the shell command a fix gives (after "extract it: " / "move its contents up: ")."""
    command = fix.split(": ", 1)[1].split(" (or pass")[0]
    subprocess.run(["bash", "-c", command], check=True)


def test_imagenet_validation_not_in_class_folders(tmp_path):
    build_imagenet(str(tmp_path), flat_val=True)
    report = check_dataset(tmp_path, "imagenet")
    assert report.status == INCOMPLETE
    (problem,) = report.problems
    assert "images/val has no class folders (its images lie flat in it)" in problem.what
    assert "prepare_data.py imagenet" in problem.fix and "--devkit" in problem.fix


@pytest.mark.parametrize("name", ["ImageNet", "ImageNetSketch"])
def test_no_classnames_txt(tmp_path, name):
    layout = BUILDERS[name](str(tmp_path))
    os.remove(tmp_path / layout.folder / "classnames.txt")
    report = check_dataset(tmp_path, name)
    assert report.status == INCOMPLETE
    (problem,) = report.problems
    assert problem.what.endswith("classnames.txt is missing")
    assert f"prepare_data.py {catalog.BENCHMARKS[name].config_name}" in problem.fix


def test_an_archive_not_extracted_and_its_fix(tmp_path):
    scratch = tmp_path / "scratch"
    build_dtd(str(scratch))
    root = tmp_path / "data"
    (root / "dtd").mkdir(parents=True)
    with tarfile.open(root / "dtd-r1.0.1.tar.gz", "w:gz") as tar:  # the official archive holds dtd/images/...
        tar.add(scratch / "dtd", arcname="dtd")
    shutil.rmtree(root / "dtd")
    report = check_dataset(root, "dtd")
    assert report.status == MISSING
    assert "dtd-r1.0.1.tar.gz is not extracted" in report.problems[0].what
    run_fix(report.problems[0].fix)
    assert check_dataset(root, "dtd").usable


def test_an_archive_not_extracted_in_the_dataset_folder(tmp_path):
    build_dtd(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "DescribableTextures"))  # the split file is in place
    images = tmp_path / "dtd" / "images"
    with tarfile.open(tmp_path / "dtd" / "images.tar", "w") as tar:
        tar.add(images, arcname="images")
    shutil.rmtree(images)
    report = check_dataset(tmp_path, "dtd")
    assert report.status == INCOMPLETE and "images.tar is not extracted" in report.problems[0].what
    run_fix(report.problems[0].fix)
    assert check_dataset(tmp_path, "dtd").usable


def test_a_dataset_one_folder_too_deep_and_its_fix(tmp_path):
    build_food101(str(tmp_path / "scratch"))
    shutil.move(tmp_path / "scratch" / "food-101", tmp_path / "food-101" / "food-101")
    report = check_dataset(tmp_path, "food101")
    assert report.status == INCOMPLETE and "one folder too deep" in report.problems[0].what
    run_fix(report.problems[0].fix)
    assert check_dataset(tmp_path, "food101").usable


def test_fgvc_aircraft_extracted_whole_into_its_folder(tmp_path):
    """The archive's fgvc-aircraft-2013b/data/ holds the dataset: two levels down, found and moved up."""
    BUILDERS["FGVCAircraft"](str(tmp_path / "scratch"))
    shutil.move(tmp_path / "scratch" / "fgvc_aircraft", tmp_path / "fgvc_aircraft" / "fgvc-aircraft-2013b" / "data")
    report = check_dataset(tmp_path, "fgvc_aircraft")
    assert report.status == INCOMPLETE and "fgvc-aircraft-2013b/data" in report.problems[0].what
    run_fix(report.problems[0].fix)
    assert check_dataset(tmp_path, "fgvc_aircraft").usable


def test_images_one_folder_too_deep_under_a_split_file(tmp_path):
    """sun397/SUN397/SUN397/a/...: the image folder exists, but every image named by the split is deeper."""
    build_sun397(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "SUN397"))
    sun = tmp_path / "sun397" / "SUN397"
    shutil.move(sun, tmp_path / "SUN397")
    sun.mkdir()
    shutil.move(tmp_path / "SUN397", sun / "SUN397")
    report = check_dataset(tmp_path, "sun397")
    assert report.status == INCOMPLETE and report.n_bad == 21
    assert "one folder too deep" in report.problems[0].fix
    run_fix(report.problems[0].fix.split("): ", 1)[1])
    assert check_dataset(tmp_path, "sun397").usable


def test_a_dataset_folder_one_level_down_in_the_root(tmp_path):
    build_dtd(str(tmp_path / "datasets"))
    report = check_dataset(tmp_path, "dtd")
    assert report.status == MISSING and "one folder too deep" in report.problems[0].what
    assert f'--root "{tmp_path / "datasets"}"' in report.problems[0].fix


def test_missing_images_are_counted_and_the_first_ones_named(tmp_path):
    build_food101(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "Food101"))
    gone = sorted((tmp_path / "food-101" / "images" / "baklava").iterdir()) + [
        tmp_path / "food-101" / "images" / "apple_pie" / "img_0000.jpg"
    ]
    for path in gone:
        os.remove(path)
    report = check_dataset(tmp_path, "food101")
    assert report.status == INCOMPLETE and report.n_bad == 7 and len(report.bad_files) == 5
    assert set(report.bad_files) <= {str(p) for p in gone}
    assert sum(report.found.values()) == 18 - 7
    text = format_reports([report])
    assert "7 of the 18 images named by split_zhou_Food101.json do not exist" in text and "... and 2 more" in text


def test_a_corrupt_image_is_found_only_when_decoding(tmp_path):
    build_dtd(str(tmp_path))
    corrupt = tmp_path / "dtd" / "images" / "banded" / "img_0002.jpg"
    corrupt.write_bytes(b"not a jpeg")
    assert check_dataset(tmp_path, "dtd").usable  # file stats only
    report = check_dataset(tmp_path, "dtd", decode=True)
    assert report.status == INCOMPLETE and report.n_bad == 1
    assert str(corrupt) in report.bad_files[0] and "cannot be read" in report.problems[0].what


def test_a_broken_split_file_names_the_entry(tmp_path):
    build_dtd(str(tmp_path))
    (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").write_text(
        '{"train": [["a.jpg", 0]], "val": [], "test": []}'
    )
    report = check_dataset(tmp_path, "dtd")
    assert report.status == INCOMPLETE and report.split_file == "broken"
    assert 'entry 0 of "train"' in report.problems[0].what
    assert catalog.BENCHMARKS["DescribableTextures"].split_url in report.problems[0].fix


def test_a_split_file_with_a_known_checksum(tmp_path, monkeypatch):
    import hashlib

    layout = build_dtd(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "DescribableTextures"))
    digest = hashlib.sha256((tmp_path / layout.split_file).read_bytes()).hexdigest()
    b = catalog.BENCHMARKS["DescribableTextures"]
    monkeypatch.setitem(catalog.BENCHMARKS, b.name, dataclasses.replace(b, split_sha256=digest))
    assert check_dataset(tmp_path, "dtd").split_file == "published"
    monkeypatch.setitem(catalog.BENCHMARKS, b.name, dataclasses.replace(b, split_sha256="0" * 64))
    report = check_dataset(tmp_path, "dtd")
    assert report.split_file == "not published" and "sha256 differs" in report.notes[0]


def test_check_data_exit_status(tmp_path, capsys):
    build_dtd(str(tmp_path))
    assert check_data.main(["--root", str(tmp_path), "dtd"]) == 0
    assert check_data.main(["--root", str(tmp_path), "dtd", "eurosat"]) == 1  # a named dataset is missing
    assert check_data.main(["--root", str(tmp_path)]) == 0  # unnamed: absent datasets are not failures
    os.remove(next((tmp_path / "dtd" / "images" / "banded").iterdir()))
    assert check_data.main(["--root", str(tmp_path)]) == 0  # no split file: the folder listing is the split
    (tmp_path / "dtd" / "images").rename(tmp_path / "dtd" / "imgs")
    assert check_data.main(["--root", str(tmp_path)]) == 1  # found but incomplete
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_cli(check_data.main, ["--root", str(tmp_path), "flowers"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: Unknown dataset "flowers". Did you mean "oxford_flowers"?') and err.count("\n") == 1


def test_a_run_checks_its_dataset_before_reading_it(tmp_path):
    """train.py on a broken benchmark stops with the check's problems and fixes, before the run folder
    is made (and without building a model)."""
    build_imagenet(str(tmp_path / "data"), flat_val=True)
    os.remove(tmp_path / "data" / "imagenet" / "classnames.txt")
    out = tmp_path / "out"
    argv = ["--root", str(tmp_path / "data"), "--trainer", "CoOp", "--backbone", "RN50", "--output-dir", str(out)]
    argv += ["--dataset-config-file", "configs/datasets/imagenet.yaml"]
    with pytest.raises(DataError) as err:
        train.main(argv)
    message = str(err.value)
    assert message.startswith(f"ImageNet cannot be used ({tmp_path}/data/imagenet):")
    assert "classnames.txt is missing" in message and "no class folders" in message  # both at once
    assert "prepare_data.py imagenet" in message
    assert not out.exists()
