"""Nothing lost on an interrupt. Every epoch leaves a resumable checkpoint whatever
TRAIN.CHECKPOINT_FREQ keeps; SIGINT / SIGTERM stop at the end of the current batch with one line giving
the command that resumes; the resumed run ends equal to the uninterrupted one."""

import os
import re
import shlex
import signal

import pytest
import torch

import train
from dasslite.engine.checkpoint import load_checkpoint, read_pointer
from dasslite.utils.io import read_json
from tests.datasets.layouts import build_oxford_pets
from tests.helpers import signal_at

from .conftest import coop_argv

# CHECKPOINT_FREQ 0 as in the shipped configs; 6 images in batches of 2: 3 batches an epoch
OPTS = ("OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "2")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_clip_path):
    base = tmp_path_factory.mktemp("uninterrupted")
    build_oxford_pets(str(base / "data"))
    train.main(coop_argv(base / "data", base / "whole", tiny_clip_path, *OPTS))
    return str(base / "data"), base / "whole"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(
    tmp_path, uninterrupted, tiny_clip_path, monkeypatch, signum
):
    pets_root, whole = uninterrupted
    cut = tmp_path / "cut"
    assert sorted(os.listdir(whole / "prompt_learner")) == ["checkpoint", "model.pth.tar-3"]

    signal_at(signum, epoch=2, batch=1, setattr=monkeypatch.setattr)
    with pytest.raises(SystemExit) as stop:
        train.main(coop_argv(pets_root, cut, tiny_clip_path, *OPTS, flags=["--overwrite"]))
    monkeypatch.undo()
    assert stop.value.code == 128 + signum
    # epoch 1 left a checkpoint though CHECKPOINT_FREQ is 0; epoch 2 stopped after batch 1 of 3
    assert read_pointer(str(cut / "prompt_learner")) == str(cut / "prompt_learner" / "model.pth.tar-1")
    assert sorted(os.listdir(cut / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]
    assert not (cut / "metrics.json").exists()
    log = re.sub(r"(?m)^\[[\d-]+ [\d:]+\] ", "", (cut / "log.txt").read_text())  # the lines' timestamps
    lines = [line for line in log.splitlines() if line.startswith("Stopped by")]
    name = signal.Signals(signum).name
    assert len(lines) == 1 and lines[0].startswith(f"Stopped by {name} at epoch 2/3, batch 1/3 (last saved: epoch 1)")
    command = shlex.split(lines[0].split("; resume with: ")[1])
    assert command[:2] == ["python", "train.py"] and command[command.index("--resume") + 1] == str(cut)
    assert "--overwrite" not in command  # it would start the resumed run over

    train.main(command[2:])
    assert "Previous epoch: 1" in (cut / "log.txt").read_text()
    a = load_checkpoint(str(whole / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    b = load_checkpoint(str(cut / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    assert torch.equal(a, b)
    assert read_json(whole / "metrics.json")["metrics"] == read_json(cut / "metrics.json")["metrics"]


def test_checkpoint_freq_decides_which_epoch_files_are_kept(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    train.main(coop_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "2"))
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-3"]
