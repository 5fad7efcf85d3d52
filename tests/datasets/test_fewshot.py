"""The few-shot sampler, its JSON cache (staleness, pickles, concurrent writers) and DatasetBase."""

import json
import logging
import multiprocessing as mp
import os
import pickle
import random

import pytest

from dasslite.data import fewshot
from dasslite.data.build import build_dataset
from dasslite.data.dataset_base import DatasetBase
from dasslite.data.datum import Datum

from .conftest import keys, make_cfg, reference_fewshot
from .layouts import build_dtd, build_oxford_pets


def _items(counts):
    """Labels interleaved so first-appearance order (2, 0, 1, ...) differs from label order."""
    items = []
    for i in range(max(counts.values())):
        for label, n in counts.items():
            if i < n:
                items.append(Datum(impath=f"/d/{label}/{i}.jpg", label=label, classname=f"c{label}"))
    return items


@pytest.mark.parametrize("seed", [0, 1, 2, 13])
@pytest.mark.parametrize("shots", [1, 2, 4, 16])
def test_sampler_equals_reference_with_global_random(seed, shots):
    train, val = _items({2: 20, 0: 9, 1: 17, 5: 3}), _items({2: 6, 0: 5, 1: 6, 5: 1})
    rng = random.Random(seed)
    ours = (fewshot.sample_fewshot(train, shots, rng), fewshot.sample_fewshot(val, min(shots, 4), rng))
    random.seed(seed)
    ref = (reference_fewshot(train, shots), reference_fewshot(val, min(shots, 4)))
    assert keys(ours[0]) == keys(ref[0]) and keys(ours[1]) == keys(ref[1])


def test_short_class_takes_all_and_warns(caplog):
    items = _items({0: 5, 1: 1})
    with caplog.at_level(logging.WARNING):
        out = DatasetBase().generate_fewshot_dataset(items, num_shots=2, rng=random.Random(0))
    assert sum(d.label == 1 for d in out) == 1 and sum(d.label == 0 for d in out) == 2
    assert "Few-shot: 1 of 2 classes have fewer images than the shots asked for (2)" in caplog.text
    assert "c1" in caplog.text


def test_generate_fewshot_dataset_several_sources_and_no_shots():
    a, b = _items({0: 5, 1: 5}), _items({0: 3})
    base = DatasetBase()
    out_a, out_b = base.generate_fewshot_dataset(a, b, num_shots=2, rng=random.Random(0))
    assert len(out_a) == 4 and len(out_b) == 2
    assert base.generate_fewshot_dataset(a, num_shots=-1, rng=random.Random(0)) is a
    repeated = base.generate_fewshot_dataset(b, num_shots=5, repeat=True, rng=random.Random(0))
    assert len(repeated) == 5


def test_split_dataset_by_label_keeps_first_appearance_order():
    assert list(DatasetBase.split_dataset_by_label(_items({3: 1, 1: 2, 2: 1}))) == [3, 1, 2]


def test_dataset_base_properties():
    train = [Datum("/a", 2, classname="two"), Datum("/b", 0, classname="zero")]
    ds = DatasetBase(train_x=train, test=train)
    assert ds.num_classes == 3 and ds.lab2cname == {0: "zero", 2: "two"} and ds.classnames == ["zero", "two"]
    assert ds.val == [] and ds.train_u == []


def _pets_fewshot(root, seed=1, shots=2):
    return build_dataset(make_cfg(root, "OxfordPets", num_shots=shots, seed=seed))


def test_cache_is_relative_json_and_reused(tmp_path, caplog):
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    with caplog.at_level(logging.INFO):
        first = _pets_fewshot(tmp_path)
    path = tmp_path / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.json"
    assert f"Saving preprocessed few-shot data to {path}" in caplog.text
    data = json.loads(path.read_text())
    assert data["sampler_version"] == fewshot.SAMPLER_VERSION and len(data["source_sha256"]) == 64
    assert all(p.startswith("images" + os.sep) for p, _, _ in data["train"])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = _pets_fewshot(tmp_path)
    assert f"Loading preprocessed few-shot data from {path}" in caplog.text
    assert keys(second.train_x) == keys(first.train_x) and keys(second.val) == keys(first.val)


def test_stale_cache_is_redrawn(tmp_path):
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))
    good = _pets_fewshot(tmp_path)
    path = tmp_path / "oxford_pets" / "split_fewshot" / "shot_2-seed_1.json"
    data = json.loads(path.read_text())
    data["train"] = data["train"][:1]  # a cache from another split ...
    data["source_sha256"] = "0" * 64  # ... carries another hash
    path.write_text(json.dumps(data))
    assert keys(_pets_fewshot(tmp_path).train_x) == keys(good.train_x)
    path.write_text("{ truncated")  # unreadable: redrawn, not fatal
    assert keys(_pets_fewshot(tmp_path).train_x) == keys(good.train_x)
    assert json.loads(path.read_text())["source_sha256"] != "0" * 64


class _Boom:
    def __reduce__(self):
        return (os.remove, ("/nonexistent/never-called",))


def test_pickle_cache_is_never_loaded(tmp_path, caplog):
    build_oxford_pets(str(tmp_path))
    fs_dir = tmp_path / "oxford_pets" / "split_fewshot"
    fs_dir.mkdir(parents=True)
    (fs_dir / "shot_2-seed_1.pkl").write_bytes(pickle.dumps({"train": _Boom(), "val": _Boom()}))
    with caplog.at_level(logging.INFO):
        ds = _pets_fewshot(tmp_path)  # unpickling would raise FileNotFoundError
    assert "pickle caches are never loaded" in caplog.text
    assert len(ds.train_x) == 10


def test_negative_seed_is_not_cached(tmp_path):
    build_dtd(str(tmp_path))
    ds = build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=1, seed=-1))
    assert len(ds.train_x) == 3
    cache_dir = tmp_path / "dtd" / "split_fewshot"
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_read_only_dataset_folder_still_runs(tmp_path, monkeypatch):
    build_dtd(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "DescribableTextures"))

    def deny(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(fewshot, "atomic_write", deny)
    assert len(build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=1)).train_x) == 3


def _build_in_child(root, queue):
    import coop_toolkit.datasets  # noqa: F401

    ds = build_dataset(make_cfg(root, "OxfordPets", num_shots=2, seed=4))
    queue.put(keys(ds.train_x) + keys(ds.val))


def test_concurrent_runs_generate_the_same_cache(tmp_path):
    build_oxford_pets(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "OxfordPets"))  # the split file exists, as with downloaded splits
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r == results[0] for r in results)
    ds = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=2, seed=4))  # reads the shared cache
    assert keys(ds.train_x) + keys(ds.val) == results[0]
    leftovers = [f for f in os.listdir(tmp_path / "oxford_pets" / "split_fewshot") if f.endswith(".tmp")]
    assert leftovers == []


def _rewrite_cache(path, dataset_dir, train, n):
    for _ in range(n):
        fewshot.save_fewshot_cache(path, dataset_dir, "h", 1, 1, train, None)


def test_readers_never_see_a_half_written_cache(tmp_path):
    train = [Datum(str(tmp_path / f"{i}.jpg"), i % 50, classname="x" * 40) for i in range(3000)]
    path = str(tmp_path / "split_fewshot" / "shot_1-seed_1.json")
    fewshot.save_fewshot_cache(path, str(tmp_path), "h", 1, 1, train, None)
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_rewrite_cache, args=(path, str(tmp_path), train, 15)) for _ in range(2)]
    for w in writers:
        w.start()
    reads = 0
    while any(w.is_alive() for w in writers) or reads < 20:
        loaded = fewshot.load_fewshot_cache(path, str(tmp_path), "h")
        assert loaded is not None and len(loaded[0]) == 3000
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
