"""A few-shot cache is used only when it is what the seeded draw gives from the
current split (type, membership, per-class counts), else it is redrawn with a warning; when several
first runs write a split or a cache at once the first file wins and every run uses it; a read-only
dataset folder without a split file works, with one warning."""

import errno
import json
import logging
import multiprocessing as mp
import os
import random
import tempfile

import pytest

from dasslite.data import fewshot, splits
from dasslite.data.build import build_dataset
from tests.datasets.conftest import keys, make_cfg
from tests.datasets.layouts import build_dtd, build_oxford_pets


@pytest.fixture
def pets(tmp_path):
    """Oxford Pets with its split file and a valid 2-shot seed-1 cache; (cache path, its data, draw)."""
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=1))
    path = tmp_path / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.json"
    return path, json.loads(path.read_text()), keys(ds.train_x) + keys(ds.val)


def redrawn_with_warning(tmp_path, caplog, path, expected):
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=1))
    assert f"Few-shot cache {path}" in caplog.text and "redrawing it" in caplog.text, caplog.text
    assert keys(ds.train_x) + keys(ds.val) == expected  # the seeded draw, not the cache
    assert json.loads(path.read_text())["train"] != []  # and the cache is rewritten


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: {**d, "train": d["train"][:3]},  # cut short, stamps intact
        lambda d: {**d, "train": []},
        lambda d: {**d, "train": d["train"] + d["train"][:1]},  # an image twice
        lambda d: {**d, "val": d["train"]},  # other images
        lambda d: {**d, "train": [[p, str(y), c] for p, y, c in d["train"]]},  # wrong types
        lambda d: {**d, "train": [["images/elsewhere.jpg", y, c] for _, y, c in d["train"]]},
        lambda d: {**d, "val": None},
        lambda d: [],
    ],
    ids=["cut", "empty", "duplicate", "not-members", "types", "unknown-paths", "no-val", "list"],
)
def test_fewshot_cache_not_matching_the_draw_is_redrawn_with_a_warning(tmp_path, caplog, pets, corrupt):
    path, data, expected = pets
    path.write_text(json.dumps(corrupt(data)))
    redrawn_with_warning(tmp_path, caplog, path, expected)


def test_fewshot_cache_matching_the_draw_is_used(tmp_path, caplog, pets):
    path, data, expected = pets
    with caplog.at_level(logging.INFO):
        ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=1))
    assert f"Loading preprocessed few-shot data from {path}" in caplog.text and "redrawing" not in caplog.text
    assert keys(ds.train_x) + keys(ds.val) == expected


def test_fewshot_cache_written_first_by_another_run_is_the_one_used(tmp_path, monkeypatch):
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    other = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=7))  # a valid, different draw
    path = tmp_path / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.json"
    competitor = json.loads((path.parent / "shot_2-seed_7.json").read_text())
    real_sample = fewshot.sample_fewshot

    def racing_sample(*args, **kwargs):  # the other run saves while this one draws
        if not path.exists():
            path.write_text(json.dumps({**competitor, "seed": 1}))
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(fewshot, "sample_fewshot", racing_sample)
    ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=1))
    assert keys(ds.train_x) + keys(ds.val) == keys(other.train_x) + keys(other.val)
    assert json.loads(path.read_text())["train"] == competitor["train"]


def test_split_file_written_first_by_another_run_is_the_one_used(tmp_path):
    build_dtd(str(tmp_path))
    image_dir = str(tmp_path / "dtd" / "images")
    path = str(tmp_path / "dtd" / "split_zhou_DescribableTextures.json")
    theirs = splits.read_and_split_data(image_dir, rng=random.Random(2))

    def make_split():  # the other run (seed 2) saves its split while this one (seed 1) makes its own
        splits.save_split(*theirs, path, image_dir)
        return splits.read_and_split_data(image_dir, rng=random.Random(1))

    assert keys(make_split()[0]) != keys(theirs[0])  # the two seeds do make different splits
    os.remove(path)
    ours = splits.read_or_make_split(path, image_dir, make_split)
    assert [keys(x) for x in ours] == [keys(x) for x in theirs]
    assert [keys(x) for x in splits.read_split(path, image_dir)] == [keys(x) for x in theirs]


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only as a mounted snapshot would be (tests may run as root, which chmod cannot stop)."""
    real_makedirs, real_mkstemp = os.makedirs, tempfile.mkstemp

    def protect(folder):
        folder = os.path.join(os.path.abspath(folder), "")

        def denied(path):
            if os.path.join(os.path.abspath(path), "").startswith(folder):
                raise PermissionError(errno.EACCES, "Permission denied", path)

        def makedirs(path, *a, **k):
            if not os.path.isdir(path):
                denied(path)
            return real_makedirs(path, *a, **k)

        def mkstemp(*a, dir=None, **k):
            denied(dir)
            return real_mkstemp(*a, dir=dir, **k)

        monkeypatch.setattr(os, "makedirs", makedirs)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    return protect


def test_read_only_dataset_folder_without_split_file_works_with_one_warning(tmp_path, caplog, read_only):
    build_dtd(str(tmp_path))
    before = sorted(os.listdir(tmp_path / "dtd"))
    read_only(tmp_path / "dtd")
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=1))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "not writable" in warnings[0].getMessage(), [r.getMessage() for r in warnings]
    assert "kept in memory" in warnings[0].getMessage()
    assert len(ds.train_x) == 3 and ds.val and ds.test
    assert sorted(os.listdir(tmp_path / "dtd")) == before  # nothing written


def _first_run(root, seed, barrier, queue):
    real_save = splits.save_split

    def save_together(*args, **kwargs):  # every run has made its own split; all save at once
        barrier.wait(timeout=60)
        return real_save(*args, **kwargs)

    splits.save_split = save_together
    ds = build_dataset(make_cfg(root, "DescribableTextures", seed=seed))
    queue.put((seed, keys(ds.train_x) + keys(ds.val) + keys(ds.test)))


def test_concurrent_first_runs_making_a_split_all_use_the_file_on_disk(tmp_path):
    build_dtd(str(tmp_path))
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_first_run, args=(str(tmp_path), seed, barrier, queue)) for seed in (1, 2, 3)]
    for p in procs:
        p.start()
    used = dict(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    on_disk = build_dataset(make_cfg(tmp_path, "DescribableTextures", seed=9))  # reads the file
    assert all(v == keys(on_disk.train_x) + keys(on_disk.val) + keys(on_disk.test) for v in used.values())
    assert [f for f in os.listdir(tmp_path / "dtd") if f.endswith(".tmp")] == []
