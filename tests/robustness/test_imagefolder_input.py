"""ImageFolder skips empty class folders (with a warning naming them) before labels
are given, so labels are always 0..K-1; skips hidden folders with a warning; refuses a single class;
reads images in subfolders of a class as torchvision's ImageFolder does, leaving flat layouts as they
were; reads class folders with spaces from classnames.txt; and 16-bit and float images are scaled to
8 bits, not clipped."""

import contextlib
import logging
import os

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

from dasslite.data.build import build_dataset
from dasslite.data.data_manager import DatasetWrapper
from dasslite.data.images import read_image
from dasslite.errors import DataError
from tests.datasets.conftest import make_cfg
from tests.datasets.layouts import build_imagefolder, write_image, write_text


def build(tmp_path, caplog=None, **kw):
    with caplog.at_level(logging.WARNING) if caplog else contextlib.nullcontext():
        return build_dataset(make_cfg(tmp_path, "ImageFolder", **kw))


def labels_of(ds):
    return sorted({d.label for items in (ds.train_x, ds.val, ds.test) for d in items})


@pytest.mark.parametrize("empty", ["aardvark", "dog_empty", "zzz"])  # first, mid-list, last
def test_imagefolder_empty_class_folder_is_skipped_before_labels_are_given(tmp_path, caplog, empty):
    build_imagefolder(str(tmp_path), classnames=False)
    os.makedirs(tmp_path / "train" / empty)
    write_text(str(tmp_path / "train" / empty / "README.txt"), ["no images here"])
    os.makedirs(tmp_path / "test" / empty)  # empty in test too: fine
    ds = build(tmp_path, caplog)
    assert str(tmp_path / "train" / empty) in caplog.text and "without images" in caplog.text
    assert ds.classnames == ["cat", "dog_breed", "zebra"] and labels_of(ds) == [0, 1, 2]
    assert ds.num_classes == 3


def test_imagefolder_empty_class_folder_with_test_images_is_refused(tmp_path):
    build_imagefolder(str(tmp_path), classnames=False)
    os.makedirs(tmp_path / "train" / "okapi")
    write_image(str(tmp_path / "test" / "okapi" / "t.jpg"))
    with pytest.raises(DataError, match=r'class "okapi" has no images in train/'):
        build(tmp_path)


def test_imagefolder_classnames_file_may_name_a_skipped_empty_folder(tmp_path):
    build_imagefolder(str(tmp_path))
    os.makedirs(tmp_path / "train" / "dodo")
    write_text(str(tmp_path / "classnames.txt"), ["dog_breed dog", "cat house cat", "dodo dodo", "zebra zebra"])
    assert build(tmp_path).classnames == ["house cat", "dog", "zebra"]


def test_imagefolder_hidden_folder_is_skipped_with_a_warning(tmp_path, caplog):
    build_imagefolder(str(tmp_path))
    write_image(str(tmp_path / "train" / ".ipynb_checkpoints" / "x.jpg"))
    write_image(str(tmp_path / "test" / ".cache" / "x.jpg"))
    ds = build(tmp_path, caplog)
    assert str(tmp_path / "train" / ".ipynb_checkpoints") in caplog.text
    assert str(tmp_path / "test" / ".cache") in caplog.text and "hidden" in caplog.text
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and ".ipynb_checkpoints" in r.getMessage()]
    assert len(warned) == 1  # train/ is listed twice (classes, then images): one notice
    assert ds.classnames == ["house cat", "dog", "zebra"]
    assert not any("/." in d.impath for items in (ds.train_x, ds.val, ds.test) for d in items)


def test_imagefolder_with_a_single_class_is_refused_naming_the_folder(tmp_path):
    for i in range(3):
        write_image(str(tmp_path / "train" / "cat" / f"{i}.jpg"))
    write_image(str(tmp_path / "test" / "cat" / "t.jpg"))
    os.makedirs(tmp_path / "train" / "dog")  # empty: skipped, which leaves one class
    with pytest.raises(DataError, match=rf'{tmp_path / "train"} has one class folder with images \("cat"\)'):
        build(tmp_path)


def items(dataset_items, root):
    return [(os.path.relpath(d.impath, root), d.label) for d in dataset_items]


def test_imagefolder_reads_subfolders_of_a_class_in_torchvision_order(tmp_path):
    build_imagefolder(str(tmp_path), val=True, classnames=False)
    for rel in ("cat/more/x.png", "cat/more/deeper/y.jpg", "cat/more-b/z.jpg", "cat/a.jpg", "zebra/only/w.png"):
        write_image(str(tmp_path / "train" / rel))
    write_image(str(tmp_path / "test" / "dog_breed" / "sub" / "t2.jpg"))
    write_image(str(tmp_path / "train" / "cat" / "more" / ".hidden" / "h.jpg"))  # hidden: skipped
    ds = build(tmp_path)
    assert ("train/cat/more/deeper/y.jpg", 0) in items(ds.train_x, tmp_path)
    assert ("test/dog_breed/sub/t2.jpg", 1) in items(ds.test, tmp_path)
    for split, ours in (("train", ds.train_x), ("test", ds.test)):
        theirs = torchvision.datasets.ImageFolder(str(tmp_path / split), allow_empty=True)
        expected = [(os.path.relpath(p, tmp_path), y) for p, y in theirs.samples if "/." not in p]
        assert items(ours, tmp_path) == expected


def test_imagefolder_class_with_images_only_in_subfolders_is_a_class(tmp_path):
    build_imagefolder(str(tmp_path), classnames=False)
    for i in range(5):
        write_image(str(tmp_path / "train" / "ant" / "2026" / f"{i}.jpg"))
    write_image(str(tmp_path / "test" / "ant" / "t.jpg"))
    assert build(tmp_path).classnames == ["ant", "cat", "dog_breed", "zebra"]


def test_imagefolder_symbolic_link_loop_in_a_class_folder_is_read_once(tmp_path):
    build_imagefolder(str(tmp_path), classnames=False)
    write_image(str(tmp_path / "train" / "cat" / "sub" / "s.jpg"))
    os.symlink(tmp_path / "train" / "cat", tmp_path / "train" / "cat" / "sub" / "loop")
    ds = build(tmp_path)
    paths = [p for p, _ in items(ds.train_x + ds.val, tmp_path)]
    assert sum("s.jpg" in p for p in paths) == 1 and not any("loop" in p for p in paths)


def test_imagefolder_flat_layout_gives_the_same_items_and_fewshot_picks_as_before(tmp_path):
    """Recorded with the reader before subfolders were read: file order, labels, the held-out val
    and the few-shot draw of a flat layout must not move."""
    build_imagefolder(str(tmp_path), classnames=False)
    for name in ("10.png", "2.png", "B.jpg", "a.JPEG", "._x.png", "z.gif", "x 1.bmp"):
        write_image(str(tmp_path / "train" / "dog_breed" / name))
    ds = build(tmp_path, num_shots=2, seed=3)
    assert items(ds.train_x, tmp_path) == [
        ("train/cat/0.JPG", 0),
        ("train/cat/4.JPG", 0),
        ("train/dog_breed/a.JPEG", 1),
        ("train/dog_breed/x 1.bmp", 1),
        ("train/zebra/1.png", 2),
        ("train/zebra/2.JPG", 2),
    ]
    assert items(ds.val, tmp_path) == [
        ("train/cat/2.JPG", 0),
        ("train/dog_breed/0.JPG", 1),
        ("train/dog_breed/z.gif", 1),
        ("train/zebra/4.JPG", 2),
    ]
    full = build(tmp_path, seed=3)
    assert [p for p, _ in items(full.train_x, tmp_path) if "dog_breed" in p] == [
        "train/dog_breed/3.png",
        "train/dog_breed/1.png",
        "train/dog_breed/x 1.bmp",
        "train/dog_breed/10.png",
        "train/dog_breed/2.JPG",
        "train/dog_breed/2.png",
        "train/dog_breed/4.JPG",
        "train/dog_breed/B.jpg",
        "train/dog_breed/a.JPEG",
    ]


def _folders_with_spaces(tmp_path, lines):
    for folder in ("sea lion", "sea", "ice cream"):
        for i in range(5):
            write_image(str(tmp_path / "train" / folder / f"{i}.jpg"))
        write_image(str(tmp_path / "test" / folder / "t.jpg"))
    write_text(str(tmp_path / "classnames.txt"), lines)


def test_imagefolder_class_folder_with_spaces_named_in_classnames_file(tmp_path):
    _folders_with_spaces(tmp_path, ["ice cream soft serve", "sea\tthe sea", "sea lion\tsea lion"])
    assert build(tmp_path).classnames == ["soft serve", "the sea", "sea lion"]  # folders sorted


def test_imagefolder_ambiguous_classnames_line_asks_for_a_tab(tmp_path):
    _folders_with_spaces(tmp_path, ["ice cream ice cream", "sea the sea", "sea lion seal"])
    with pytest.raises(
        ValueError, match=r"classnames.txt, line 3: .*separate the folder from the class name with a tab"
    ):
        build(tmp_path)


def _save(tmp_path, name, array, **kw):
    path = str(tmp_path / name)
    Image.fromarray(array).save(path, **kw)
    return path


def gray(path):
    return np.asarray(read_image(path))[..., 0].astype(int)


RAMP = np.arange(256).reshape(16, 16)


@pytest.mark.parametrize(
    "name, array",
    [
        ("ramp16.png", (RAMP * 257).astype(np.uint16)),  # 16-bit PNG (mode I;16)
        ("ramp32.tif", (RAMP * 257).astype(np.int32)),  # 32-bit integer holding 16-bit data (mode I)
        ("rampf.tif", (RAMP / 255.0).astype(np.float32)),  # float in 0..1 (mode F)
    ],
)
def test_high_bit_depth_images_are_scaled_to_8_bits_not_clipped(tmp_path, name, array):
    path = _save(tmp_path, name, array)
    assert Image.open(path).mode in ("I;16", "I", "F")
    np.testing.assert_array_equal(gray(path), RAMP)  # 0..max -> 0..255, the ramp kept


def test_float_and_wide_integer_images_out_of_range_are_stretched(tmp_path):
    wide = gray(_save(tmp_path, "wide.tif", (RAMP * 100_000 - 3).astype(np.int32)))
    hdr = gray(_save(tmp_path, "hdr.tif", (RAMP * 4.0 - 100).astype(np.float32)))
    for g in (wide, hdr):
        assert g.min() == 0 and g.max() == 255 and len(np.unique(g)) == 256


def test_imagefolder_16_bit_images_reach_the_batch_unclipped(tmp_path):
    build_imagefolder(str(tmp_path))
    dark = np.full((16, 16), 20000, dtype=np.uint16)  # clipped to 8 bits it would be white
    _save(tmp_path / "test" / "cat", "dark16.png", dark)
    cfg = make_cfg(tmp_path, "ImageFolder")
    ds = build_dataset(cfg)
    index = next(i for i, d in enumerate(ds.test) if d.impath.endswith("dark16.png"))
    img = DatasetWrapper(cfg, ds.test, transform=T.ToTensor())[index]["img"]
    assert torch.allclose(img, torch.full_like(img, round(20000 / 257) / 255))


def test_imagefolder_class_folder_not_utf8_is_refused_naming_it(tmp_path):
    """A class folder name from another encoding would become a class name printed, logged and recorded."""
    build_imagefolder(str(tmp_path), classnames=False)
    os.rename(tmp_path / "train" / "zebra", os.path.join(os.fsencode(tmp_path / "train"), b"z\xe8bre"))
    with pytest.raises(DataError, match=r'class folder name "z\\xe8bre" is not valid UTF-8.*rename'):
        build(tmp_path)


def test_imagefolder_classnames_file_not_utf8_is_refused_naming_it(tmp_path):
    build_imagefolder(str(tmp_path))
    (tmp_path / "classnames.txt").write_bytes("dog_breed chien\ncat chat\nzebra z\xe8bre\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"classnames\.txt is not UTF-8"):
        build(tmp_path)


def test_imagefolder_image_name_not_utf8_is_drawn_from_in_a_few_shot_split(tmp_path):
    """The few-shot cache's hash takes such a name's own bytes (it cannot be encoded as UTF-8 text)."""
    build_imagefolder(str(tmp_path), classnames=False)
    cat = os.fsencode(tmp_path / "train" / "cat")
    os.rename(os.path.join(cat, b"1.png"), os.path.join(cat, b"\xff1.png"))
    ds = build_dataset(make_cfg(tmp_path, "ImageFolder", num_shots=5))
    assert any(os.fsencode(d.impath).endswith(b"\xff1.png") for d in ds.train_x)
    again = build_dataset(make_cfg(tmp_path, "ImageFolder", num_shots=5))  # read back from the cache
    assert [d.impath for d in again.train_x] == [d.impath for d in ds.train_x]
