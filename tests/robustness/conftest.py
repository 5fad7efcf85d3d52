"""Fixtures for the robustness tests: a miniature Oxford Pets root and train.py command lines.

`train_argv(...)` is the README's CoCoOp command on the tiny CLIP, short enough for CPU; tests run it
in-process with `train.main(argv)`, or as a subprocess (`run_train_py`) where a process must be
killed or several must run at once.
"""

import os
import shutil
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


# Runs train.py as its __main__ after adding a root log handler that SIGKILLs the process the moment a
# line containing sys.argv[1] is logged: a kill at an exact point, however fast the run goes.
_KILL_AT_LINE = """
import logging, os, runpy, signal, sys
needle = sys.argv.pop(1)
class KillAt(logging.Handler):
    def emit(self, record):
        if needle in record.getMessage():
            os.kill(os.getpid(), signal.SIGKILL)
logging.getLogger().addHandler(KillAt())
sys.argv[0] = os.path.join(os.getcwd(), "train.py")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start_train_py(argv, log_path, kill_at_line=None):
    """train.py as a child process, stdout+stderr to `log_path`. With `kill_at_line`, the process
    SIGKILLs itself when it logs a line containing that text (before the line reaches log.txt)."""
    log = open(log_path, "wb")
    cmd = [os.path.join(REPO, "train.py")] if kill_at_line is None else ["-c", _KILL_AT_LINE, kill_at_line]
    return subprocess.Popen(
        [sys.executable, *cmd, *argv],
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


# CoOp with 2 fp32 context vectors in batches of 4
COOP_OPTS = ("TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "4")


def coop_argv(root, out, backbone, *opts, flags=(), seed=1):
    """train_argv for CoOp with COOP_OPTS, then `opts` (a later KEY wins)."""
    return train_argv(root, out, backbone, *COOP_OPTS, *opts, trainer="CoOp", seed=seed, flags=flags)


def eval_argv(root, out, model_dir, backbone, *opts, trainer="CoOp"):
    return train_argv(
        root,
        out,
        backbone,
        "TRAINER.COOP.PREC",
        "fp32",
        "TRAINER.COCOOP.PREC",
        "fp32",
        *opts,
        trainer=trainer,
        flags=["--eval-only", "--model-dir", str(model_dir), "--load-epoch", "1"],
    )


@pytest.fixture(scope="session")
def trained_coop(tmp_path_factory, tiny_clip_path):
    """A finished 1-epoch CoOp run (N_CTX 2), shared by several tests: copy it (copy_run) to change it."""
    import train

    base = tmp_path_factory.mktemp("coop_run")
    root = base / "data"
    build_oxford_pets(str(root))
    out = base / "out"
    train.main(coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    assert (out / "prompt_learner" / "model.pth.tar-1").is_file()
    return str(root), out


def copy_run(src, dst, finished=True):
    """A copy of the run folder `src`; finished=False drops metrics.json, as a run killed before its test."""
    shutil.copytree(src, dst)
    if not finished:
        os.remove(os.path.join(dst, "metrics.json"))
    return dst
