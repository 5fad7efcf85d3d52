"""Unsafe files are never trusted: checkpoints are loaded with weights_only=True; no pickle from a
dataset folder is ever loaded; archives are never extracted without path filtering; output paths come
only from the config."""

import ast
import os
import pickle

import pytest
import torch

import train
from dasslite.engine.checkpoint import UnsafeCheckpointError, load_checkpoint
from dasslite.utils.io import read_json

from .conftest import REPO, files_under, train_argv


class _Payload:
    """Unpickling this creates `marker`: proof that a pickle was fully loaded (code ran)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_are_loaded_with_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth.tar-1"
    torch.save({"state_dict": {"ctx": torch.zeros(2)}, "epoch": 1, "evil": _Payload(str(marker))}, path)
    with pytest.raises(
        UnsafeCheckpointError,
        match=r'Refusing to load ".*model\.pth\.tar-1": it pickles '
        r"(builtins|_?io)\.open.*not on the checkpoint allowlist",
    ):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_eval_only_refuses_a_checkpoint_that_pickles_code(tmp_path, pets_root, tiny_clip_path):
    marker = tmp_path / "pwned"
    model_dir = tmp_path / "run" / "prompt_learner"
    model_dir.mkdir(parents=True)
    torch.save(
        {"state_dict": {"ctx": torch.zeros(2, 64)}, "epoch": 1, "evil": _Payload(str(marker))},
        model_dir / "model.pth.tar-1",
    )
    argv = train_argv(
        pets_root,
        tmp_path / "eval",
        tiny_clip_path,
        "TRAINER.COCOOP.PREC",
        "fp32",
        flags=["--eval-only", "--model-dir", str(tmp_path / "run"), "--load-epoch", "1"],
    )
    with pytest.raises(UnsafeCheckpointError):
        train.main(argv)
    assert not marker.exists()


def test_pickle_fewshot_cache_in_the_dataset_folder_is_never_loaded(tmp_path, pets_root, tiny_clip_path):
    """The reference cached few-shot draws as split_fewshot/shot_K-seed_S.pkl; a planted one is ignored."""
    marker = tmp_path / "pwned"
    cache_dir = os.path.join(pets_root, "oxford_pets", "split_fewshot")
    os.makedirs(cache_dir)
    with open(os.path.join(cache_dir, "shot_2-seed_1.pkl"), "wb") as f:
        pickle.dump({"train": _Payload(str(marker)), "val": _Payload(str(marker))}, f)
    out = tmp_path / "out"
    train.main(train_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1", "TRAINER.COCOOP.PREC", "fp32"))
    assert not marker.exists()
    assert len(read_json(os.path.join(cache_dir, "shot_2-seed_1.json"))["train"]) == 10
    assert "Ignoring" in (out / "log.txt").read_text()


# ---------------------------------------------------------------- the source tree


def _sources():
    skip = {".git", "tests", "build", "node_modules"}
    for d, dirs, files in os.walk(REPO):
        dirs[:] = [x for x in dirs if x not in skip and not x.startswith(".")]
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(d, f)


def _calls(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            kwargs = {k.arg: k.value for k in node.keywords}
            yield f"{os.path.relpath(path, REPO)}:{node.lineno}", owner, name, kwargs


def _is_true(node):
    return isinstance(node, ast.Constant) and node.value is True


def test_source_tree_never_unpickles_loads_unsafely_or_extracts_archives():
    """torch.load always with weights_only=True, np.load never with allow_pickle=True, and no pickle.load(s),
    tarfile/zipfile extractall or shutil.unpack_archive without a path filter, anywhere in the shipped code."""
    problems = []
    for path in _sources():
        for where, owner, name, kwargs in _calls(path):
            if owner == "torch" and name == "load" and not _is_true(kwargs.get("weights_only")):
                problems.append(f"{where}: torch.load without weights_only=True")
            if owner in ("np", "numpy") and name == "load" and _is_true(kwargs.get("allow_pickle")):
                problems.append(f"{where}: np.load(allow_pickle=True)")
            if owner in ("pickle", "cPickle", "dill", "joblib") and name in ("load", "loads"):
                problems.append(f"{where}: {owner}.{name}")
            if name in ("extractall", "unpack_archive") and "filter" not in kwargs:
                problems.append(f"{where}: {name} without a path filter (filter='data')")
    assert not problems, "\n".join(problems)


def test_outputs_are_written_only_under_output_dir(tmp_path, pets_root, tiny_clip_path, monkeypatch):
    """A run writes under OUTPUT_DIR and, for its caches, the dataset folder: nowhere else (not the working
    directory, not the backbone's folder), whatever the config's defaults."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = files_under(tmp_path)
    clip_dir = os.path.dirname(tiny_clip_path)
    clip_before = files_under(clip_dir)
    out = tmp_path / "runs" / "seed1"
    train.main(train_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1", "TRAINER.COCOOP.PREC", "fp32"))
    new = files_under(tmp_path) - before
    outside = sorted(
        f
        for f in new
        if not f.startswith(os.path.join("runs", "seed1", ""))
        and not f.startswith(os.path.join("data", "oxford_pets", "split"))
    )
    assert not outside, outside
    assert {
        os.path.join("data", "oxford_pets", "split_zhou_OxfordPets.json"),
        os.path.join("data", "oxford_pets", "split_fewshot", "shot_2-seed_1.json"),
        os.path.join("runs", "seed1", "metrics.json"),
    } <= new
    assert files_under(clip_dir) == clip_before
    assert os.listdir(work) == []
