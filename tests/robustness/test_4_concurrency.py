"""Several runs (different seeds) started at once on the same dataset root and output parent
folder finish correctly, and split and few-shot cache files are never seen half-written."""

import json
import os

import pytest

from dasslite.data import fewshot, splits
from dasslite.data.datum import Datum
from dasslite.utils.io import read_json
from tests.datasets.layouts import build_oxford_pets
from tests.helpers import QUICK_COOP_OPTS

from .conftest import files_under, start_train_py, train_argv

SEEDS = (1, 2, 3)


def test_concurrent_runs_on_one_root_and_output_parent_all_finish(tmp_path, tiny_clip_path):
    """A fresh root (no split file, no few-shot cache yet): all runs race to create them."""
    root, parent = tmp_path / "data", tmp_path / "output"
    build_oxford_pets(str(root))
    procs = []
    for seed in SEEDS:
        argv = train_argv(
            root,
            parent / f"seed{seed}",
            tiny_clip_path,
            *QUICK_COOP_OPTS,
            "DATALOADER.TRAIN_X.BATCH_SIZE",
            "2",
            trainer="CoOp",
            seed=seed,
        )
        procs.append(start_train_py(argv, tmp_path / f"seed{seed}.out"))
    for seed, (proc, log) in zip(SEEDS, procs):
        rc = proc.wait(timeout=600)
        log.close()
        assert rc == 0, (tmp_path / f"seed{seed}.out").read_text()[-3000:]
    for seed in SEEDS:
        metrics = read_json(parent / f"seed{seed}" / "metrics.json")
        assert metrics["finished"] is True and metrics["run"]["seed"] == seed
        assert (parent / f"seed{seed}" / "prompt_learner" / "model.pth.tar-1").is_file()
        cache = read_json(root / "oxford_pets" / "split_fewshot" / f"shot_2-seed_{seed}.json")
        assert cache["seed"] == seed and len(cache["train"]) == 2 * 5
    split = read_json(root / "oxford_pets" / "split_zhou_OxfordPets.json")
    assert [len(split[k]) for k in ("train", "val", "test")] == [20, 5, 10]
    assert not [f for f in files_under(tmp_path) if f.endswith(".tmp")]


def _items(root):
    return [
        Datum(impath=os.path.join(root, f"c{y}", f"{i}.jpg"), label=y, classname=f"c{y}")
        for y in range(3)
        for i in range(4)
    ]


@pytest.fixture
def dump_dies_midway(monkeypatch):
    """json.dump writes half of its output, then the process 'dies' (an exception nobody catches)."""
    real_dump = json.dump

    def dump(obj, f, **kwargs):
        text = json.dumps(obj, **kwargs)
        f.write(text[: len(text) // 2])
        f.flush()
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(json, "dump", dump)
    yield
    monkeypatch.setattr(json, "dump", real_dump)


def test_fewshot_cache_is_never_seen_half_written(tmp_path, dump_dies_midway):
    import random

    path = fewshot.cache_path(str(tmp_path), 2, 1)
    items = _items(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        fewshot.fewshot_split(str(tmp_path), items, items[:6], 2, 1, random.Random(1))
    assert not os.path.exists(path)
    assert os.listdir(os.path.dirname(path)) == []  # no temp file left behind either


def test_split_file_is_never_seen_half_written(tmp_path, dump_dies_midway):
    path = tmp_path / "split_zhou_Toy.json"
    items = _items(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        splits.save_split(items[:6], items[6:9], items[9:], str(path), str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_truncated_fewshot_cache_is_redrawn_not_trusted(tmp_path):
    """Had a cache been left half-written (by an older version, or a full disk), the run redraws it."""
    import random

    items = _items(str(tmp_path))
    path = fewshot.cache_path(str(tmp_path), 2, 1)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write('{"sampler_version": 1, "train": [["c0/1.jpg", 0')
    train, _ = fewshot.fewshot_split(str(tmp_path), items, items[:6], 2, 1, random.Random(1))
    assert len(train) == 6
    assert len(read_json(path)["train"]) == 6
