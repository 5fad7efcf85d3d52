"""prepare_data.py's own steps: laying out torchvision's on-disk download (the folders each torchvision class
writes, built here and accepted by torchvision itself), resuming, ImageNet's validation sort from a
generated devkit, classnames.txt, and what it says to download by hand. The download is torchvision's and
is not run here."""

import io
import json
import os
import shutil
import tarfile

import numpy as np
import pytest
import torchvision.datasets
from scipy.io import savemat

import prepare_data
from coop_toolkit.datasets import catalog
from coop_toolkit.datasets.check import check_dataset
from coop_toolkit.datasets.prepare import prepare_dataset, read_devkit_val_wnids
from dasslite.data.build import build_dataset
from dasslite.errors import DataError

from .conftest import keys, make_cfg
from .layouts import BUILDERS, WNIDS, build_imagenet, build_imagenet_sketch, write_text


def _move(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.move(src, dst)


def torchvision_download(name, cache, scratch):
    """The miniature layout of `name` rearranged into the folders torchvision's class writes under its
    root (torchvision/datasets/<module>.py), plus the few files that class reads on construction."""
    BUILDERS[name](scratch)
    s, c = str(scratch), str(cache)
    if name == "Caltech101":
        _move(f"{s}/caltech-101/101_ObjectCategories", f"{c}/caltech101/101_ObjectCategories")
        return "Caltech101", {}
    if name == "OxfordPets":
        for sub in ("images", "annotations"):
            _move(f"{s}/oxford_pets/{sub}", f"{c}/oxford-iiit-pet/{sub}")
        return "OxfordIIITPet", {}
    if name == "OxfordFlowers":
        for sub in ("jpg", "imagelabels.mat"):
            _move(f"{s}/oxford_flowers/{sub}", f"{c}/flowers-102/{sub}")
        savemat(f"{c}/flowers-102/setid.mat", {"trnid": [[1]], "valid": [[2]], "tstid": [[3]]})
        shutil.copy(f"{s}/oxford_flowers/cat_to_name.json", f"{c}/cat_to_name.json")  # the user's download
        return None, {}  # Flowers102 checks the md5 of the real .mat files: not constructed here
    if name == "Food101":
        _move(f"{s}/food-101/images", f"{c}/food-101/images")
        meta = {cls: [f"{cls}/img_0000"] for cls in os.listdir(f"{c}/food-101/images")}
        os.makedirs(f"{c}/food-101/meta")
        with open(f"{c}/food-101/meta/train.json", "w") as f:
            json.dump(meta, f)
        return "Food101", {}
    if name == "FGVCAircraft":
        _move(f"{s}/fgvc_aircraft", f"{c}/fgvc-aircraft-2013b/data")
        data = f"{c}/fgvc-aircraft-2013b/data"
        with open(f"{data}/images_variant_train.txt") as a, open(f"{data}/images_variant_val.txt") as b:
            write_text(f"{data}/images_variant_trainval.txt", (a.read() + b.read()).split("\n")[:-1])
        return "FGVCAircraft", {}
    if name == "SUN397":
        _move(f"{s}/sun397/SUN397", f"{c}/SUN397")
        shutil.copy(f"{s}/sun397/ClassName.txt", f"{c}/SUN397/ClassName.txt")
        return "SUN397", {}
    if name == "DescribableTextures":
        _move(f"{s}/dtd/images", f"{c}/dtd/dtd/images")
        write_text(f"{c}/dtd/dtd/labels/train1.txt", ["banded/img_0000.jpg"])
        return "DTD", {}
    if name == "EuroSAT":
        _move(f"{s}/eurosat/2750", f"{c}/eurosat/2750")
        return "EuroSAT", {}
    raise KeyError(name)


FETCHED = ["Caltech101", "OxfordPets", "OxfordFlowers", "Food101", "FGVCAircraft", "SUN397", "DescribableTextures"]
FETCHED += ["EuroSAT"]


def no_download(monkeypatch):
    """Fail the test if a torchvision class is asked to download."""

    def refuse(*args, **kwargs):
        raise AssertionError("torchvision was asked to download")

    for b in catalog.BENCHMARKS.values():
        if b.torchvision:
            monkeypatch.setattr(torchvision.datasets, b.torchvision.cls, refuse)


def test_every_torchvision_benchmark_is_covered_here():
    assert sorted(b.name for b in catalog.BENCHMARKS.values() if b.torchvision) == sorted(FETCHED)


@pytest.mark.parametrize("name", FETCHED)
def test_torchvision_download_is_laid_out_and_read(tmp_path, monkeypatch, name):
    cache, root = tmp_path / "cache", tmp_path / "data"
    root.mkdir()
    tv_class, kwargs = torchvision_download(name, cache, tmp_path / "scratch")
    if tv_class:  # the layout built here is the one torchvision itself reads
        getattr(torchvision.datasets, tv_class)(root=str(cache), download=False, **kwargs)
    expected = BUILDERS[name](str(tmp_path / "reference"))  # the same miniature in the reader's own layout
    no_download(monkeypatch)
    b = catalog.BENCHMARKS[name]
    if name == "OxfordFlowers":  # cat_to_name.json is no library's: the user puts it in place
        os.makedirs(root / b.folder)
        shutil.copy(cache / "cat_to_name.json", root / b.folder / "cat_to_name.json")
    if name == "SUN397":  # torchvision has no partition files: the split file is the user's download
        build_dataset(make_cfg(tmp_path / "reference", name))
        os.makedirs(root / b.folder)
        shutil.copy(tmp_path / expected.split_file.replace("sun397", "reference/sun397"), root / b.folder)

    prep = prepare_dataset(root, name, cache=str(cache))
    assert prep.done[0].startswith(f"torchvision's {b.torchvision.cls} is already in")
    assert len(prep.done) == 1 + len(b.torchvision.links)
    assert all(os.path.islink(root / b.folder / dst) for _, dst in b.torchvision.links)
    ds = build_dataset(make_cfg(root, name))
    reference = build_dataset(make_cfg(tmp_path / "reference", name))
    assert ds.classnames == expected.classnames
    for split in ("train_x", "val", "test"):  # same images, labels and class names as the reader's layout
        relative = [(os.path.basename(p), y, c) for p, y, c in keys(getattr(ds, split))]
        assert sorted(relative) == sorted((os.path.basename(p), y, c) for p, y, c in keys(getattr(reference, split)))
    assert check_dataset(root, name).usable

    again = prepare_dataset(root, name, cache=str(cache))  # resumable: nothing left to do
    assert again.done == prep.done[:1]


def test_the_data_root_can_be_the_cache(tmp_path, monkeypatch):
    """torchvision's Food101 folder is food-101/, the reader's too: laying it out in place changes nothing."""
    torchvision_download("Food101", tmp_path, tmp_path / "scratch")
    no_download(monkeypatch)
    prep = prepare_dataset(tmp_path, "food101", cache=str(tmp_path))
    assert len(prep.done) == 1 and not os.path.islink(tmp_path / "food-101" / "images")


def test_the_check_finds_torchvision_download_in_the_root_and_names_the_command(tmp_path, monkeypatch):
    torchvision_download("Caltech101", tmp_path, tmp_path / "scratch")  # caltech101/, not caltech-101/
    report = check_dataset(tmp_path, "caltech101")
    assert report.status == "missing" and "torchvision's download of Caltech101" in report.problems[0].what
    no_download(monkeypatch)
    command = report.problems[0].fix.split("python prepare_data.py ")[1].replace('"', "").split()
    assert prepare_data.main(command) == 0
    assert check_dataset(tmp_path, "caltech101").usable


def test_an_interrupted_layout_continues(tmp_path, monkeypatch):
    cache, root = tmp_path / "cache", tmp_path / "data"
    root.mkdir()
    torchvision_download("OxfordPets", cache, tmp_path / "scratch")
    no_download(monkeypatch)
    os.makedirs(root / "oxford_pets")
    os.symlink(cache / "oxford-iiit-pet" / "images", root / "oxford_pets" / "images")  # the first link was made
    prep = prepare_dataset(root, "oxford_pets", cache=str(cache))
    assert [line.split()[1] for line in prep.done[1:]] == [str(root / "oxford_pets" / "annotations")]
    assert check_dataset(root, "oxford_pets").usable


def test_an_incomplete_download_is_an_error(tmp_path, monkeypatch):
    cache, root = tmp_path / "cache", tmp_path / "data"
    root.mkdir()
    torchvision_download("FGVCAircraft", cache, tmp_path / "scratch")
    os.remove(cache / "fgvc-aircraft-2013b" / "data" / "variants.txt")
    monkeypatch.setattr(torchvision.datasets, "FGVCAircraft", lambda **kw: None)  # "downloaded", still incomplete
    with pytest.raises(DataError, match="variants.txt is missing from torchvision's FGVCAircraft download"):
        prepare_dataset(root, "fgvc_aircraft", cache=str(cache))


# ---- ImageNet ---------------------------------------------------------------------------------------

# build_imagenet numbers the val images 1..8, two per wnid, wnids in reverse sorted order.
VAL_WNIDS = [w for w in list(WNIDS)[::-1] for _ in range(2)]


def write_devkit(path, as_archive=True):
    """The ILSVRC 2012 devkit's two files: meta.mat (ILSVRC2012_ID -> WNID, internal synsets with
    children included) and the validation ground truth, one ID per image."""
    ids = {w: i for i, w in zip((3, 1, 4, 2), WNIDS)}  # IDs are not in wnid order, as in the real devkit
    rows = [(i, w, WNIDS[w], "gloss", 0) for w, i in ids.items()] + [(1001, "n00001740", "entity", "", 3)]
    synsets = np.zeros(
        (len(rows),), dtype=[(k, "O") for k in ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children")]
    )
    for n, row in enumerate(rows):
        synsets[n] = row
    meta = io.BytesIO()
    savemat(meta, {"synsets": synsets})
    truth = "".join(f"{ids[w]}\n" for w in VAL_WNIDS).encode()
    files = {"ILSVRC2012_devkit_t12/data/meta.mat": meta.getvalue()}
    files["ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"] = truth
    if not as_archive:
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
            with open(os.path.join(path, rel), "wb") as f:
                f.write(data)
        return str(path)
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.mark.parametrize("as_archive", [True, False])
def test_devkit_labels(tmp_path, as_archive):
    devkit = write_devkit(tmp_path / ("devkit.tar.gz" if as_archive else "devkit"), as_archive)
    assert read_devkit_val_wnids(devkit) == VAL_WNIDS


def test_imagenet_validation_is_sorted_by_the_devkit_labels(tmp_path, capsys):
    build_imagenet(str(tmp_path), flat_val=True)
    devkit = write_devkit(tmp_path / "ILSVRC2012_devkit_t12.tar.gz")
    assert not check_dataset(tmp_path, "imagenet").usable
    val = tmp_path / "imagenet" / "images" / "val"
    os.makedirs(val / VAL_WNIDS[0])
    os.replace(val / "ILSVRC2012_val_00000001.JPEG", val / VAL_WNIDS[0] / "ILSVRC2012_val_00000001.JPEG")  # interrupted
    assert prepare_data.main(["imagenet", "--root", str(tmp_path), "--devkit", devkit]) == 0
    assert "sorted 7 validation images" in capsys.readouterr().out
    ds = build_dataset(make_cfg(tmp_path, "ImageNet"))
    truth = {f"ILSVRC2012_val_{k:08d}.JPEG": sorted(WNIDS).index(w) for k, w in enumerate(VAL_WNIDS, 1)}
    assert {os.path.basename(d.impath): d.label for d in ds.test} == truth
    again = prepare_dataset(tmp_path, "imagenet", devkit=devkit)  # a second run does nothing
    assert again.done == []


def test_a_file_that_is_not_a_validation_image_stops_the_sort(tmp_path):
    build_imagenet(str(tmp_path), flat_val=True)
    (tmp_path / "imagenet" / "images" / "val" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="notes.txt"):
        prepare_dataset(tmp_path, "imagenet", devkit=write_devkit(tmp_path / "devkit.tgz"))
    assert (tmp_path / "imagenet" / "images" / "val" / "ILSVRC2012_val_00000001.JPEG").exists()  # nothing moved


def test_imagenet_classnames_are_written_from_clip_names(tmp_path):
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    wnids = [f"n{i:08d}" for i in range(1000)]
    for w in wnids[::-1]:
        os.makedirs(tmp_path / "imagenet" / "images" / "train" / w)
    prep = prepare_dataset(tmp_path, "imagenet")
    lines = (tmp_path / "imagenet" / "classnames.txt").read_text().splitlines()
    assert lines[0] == f"{wnids[0]} tench" and lines[1] == f"{wnids[1]} goldfish"
    assert lines == [f"{w} {n}" for w, n in zip(wnids, IMAGENET_CLASSNAMES)]
    assert any("wrote" in line for line in prep.done)
    (tmp_path / "imagenet" / "classnames.txt").write_text("mine\n")
    prepare_dataset(tmp_path, "imagenet")
    assert (tmp_path / "imagenet" / "classnames.txt").read_text() == "mine\n"  # a user's file is kept


def test_a_variant_gets_a_copy_of_imagenet_classnames(tmp_path):
    build_imagenet_sketch(str(tmp_path))
    os.remove(tmp_path / "imagenet-sketch" / "classnames.txt")
    prep = prepare_dataset(tmp_path, "imagenet_sketch")
    assert prep.todo == [
        "classnames.txt: a copy of imagenet/classnames.txt (prepare_data.py imagenet_sketch copies it once "
        f"imagenet/ has one) -> {tmp_path}/imagenet-sketch/"
    ]
    build_imagenet(str(tmp_path))
    prep = prepare_dataset(tmp_path, "imagenet_sketch")
    assert prep.todo == [] and check_dataset(tmp_path, "imagenet_sketch").usable


def test_what_no_library_fetches_is_spelled_out(tmp_path):
    prep = prepare_dataset(tmp_path, "ucf101")
    folder = tmp_path / "ucf101"
    assert prep.todo == [
        "split_zhou_UCF101.json (the published split): "
        f"{catalog.drive('1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y')} -> {folder}/",
        "UCF-101-midframes.zip (the middle frames the CoOp authors extracted), extracted: "
        f"{catalog.drive('10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O')} -> {folder}/",
    ]
    cars = prepare_dataset(tmp_path, "stanford_cars").todo
    assert len(cars) == 3 and "cars_train.tgz" in cars[1] and "kaggle" in cars[1]


def test_prepare_data_exit_status(tmp_path, capsys):
    assert prepare_data.main(["ucf101", "--root", str(tmp_path)]) == 1  # still missing
    out = capsys.readouterr().out
    assert "download by hand:" in out and "UCF-101-midframes.zip" in out
