"""Fixtures for the robustness tests: a miniature Oxford Pets root and train.py command lines.

`train_argv(...)` is the README's CoCoOp command on the tiny CLIP, short enough for CPU; tests run it
in-process with `train.main(argv)`, or as a subprocess (`run_train_py`) where a process must be
killed or several must run at once.
"""

import os
import subprocess
import sys

import pytest

from tests.datasets.layouts import build_oxford_pets
from tests.helpers import cpu_run_opts

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATASET_YAML = os.path.join(REPO, "configs", "datasets", "oxford_pets.yaml")
COCOOP_YAML = os.path.join(REPO, "configs", "trainers", "CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1.yaml")
COOP_YAML = os.path.join(REPO, "configs", "trainers", "CoOp", "vit_b16.yaml")


@pytest.fixture
def pets_root(tmp_path):
    root = tmp_path / "data"
    build_oxford_pets(str(root))
    return str(root)


def train_argv(root, out, backbone, *opts, trainer="CoCoOp", seed=1, flags=()):
    """train.py arguments: the CoCoOp (or CoOp) recipe, 2 shots of the base classes, 2 epochs."""
    config = COCOOP_YAML if trainer == "CoCoOp" else COOP_YAML
    return [
        "--root",
        str(root),
        "--seed",
        str(seed),
        "--trainer",
        trainer,
        "--dataset-config-file",
        DATASET_YAML,
        "--config-file",
        config,
        "--output-dir",
        str(out),
        *flags,
        "DATASET.NUM_SHOTS",
        "2",
        "DATASET.SUBSAMPLE_CLASSES",
        "base",
        "OPTIM.MAX_EPOCH",
        "2",
        *cpu_run_opts(backbone),
        *opts,
    ]


def subprocess_env():
    env = dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def start_train_py(argv, log_path):
    """train.py as a child process (its own process group), stdout+stderr to `log_path`."""
    log = open(log_path, "wb")
    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"), *argv],
        cwd=REPO,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    ), log


def run_train_py(argv, log_path, timeout=300):
    proc, log = start_train_py(argv, log_path)
    try:
        return proc.wait(timeout=timeout)
    finally:
        log.close()


def files_under(path):
    """Every file below `path`, relative, as a set."""
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs}
