"""Crash safety. Checkpoints are written to a temp file and renamed, and carry the optimizer,
scheduler, epoch and every RNG state; a run SIGKILLed mid-epoch and restarted with --resume ends with the
same learned prompt (bit for bit on CPU) and the same test accuracy as an uninterrupted run."""

import os
import signal

import pytest
import torch

import train
from dasslite.engine import checkpoint as ckpt_mod
from dasslite.engine.checkpoint import load_checkpoint, read_pointer, save_checkpoint
from dasslite.utils.io import read_json

from .conftest import files_under, run_train_py, start_train_py, train_argv


def _state(epoch):
    return {
        "state_dict": {"ctx": torch.full((2, 4), float(epoch))},
        "epoch": epoch,
        "optimizer": None,
        "scheduler": None,
        "val_result": None,
    }


def _crashing_save(obj, f):
    f.write(b"half a checkpoint")
    f.flush()
    raise KeyboardInterrupt("killed while writing")


@pytest.mark.parametrize("epoch", [1, 2], ids=["same_file", "next_file"])
def test_checkpoint_is_written_to_a_temp_file_and_renamed(tmp_path, monkeypatch, epoch):
    """A write that dies midway leaves the previous checkpoint and the `checkpoint` pointer untouched,
    no partial model.pth.tar-N, and no temp file behind."""
    save_checkpoint(_state(1), str(tmp_path))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    monkeypatch.setattr(ckpt_mod.torch, "save", _crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(epoch), str(tmp_path))
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    assert read_pointer(str(tmp_path)) == str(tmp_path / "model.pth.tar-1")
    assert torch.equal(load_checkpoint(str(tmp_path / "model.pth.tar-1"))["state_dict"]["ctx"], torch.ones(2, 4))


def test_checkpoint_carries_optimizer_scheduler_epoch_and_every_rng_state(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    train.main(
        train_argv(
            pets_root,
            out,
            tiny_clip_path,
            "OPTIM.MAX_EPOCH",
            "2",
            "TRAIN.CHECKPOINT_FREQ",
            "1",
            "TRAINER.COCOOP.PREC",
            "fp32",
        )
    )
    ckpt = load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-1"))
    assert ckpt["epoch"] == 1
    assert ckpt["meta"] == {"trainer": "CoCoOp", "model_name": "prompt_learner"}
    assert set(ckpt["state_dict"]) >= {"ctx", "meta_net.linear1.weight", "meta_net.linear2.bias"}
    momentum = ckpt["optimizer"]["state"]  # SGD with momentum: a buffer per learned tensor
    assert len(momentum) == len([k for k in ckpt["state_dict"] if k not in ("token_prefix", "token_suffix")])
    assert all("momentum_buffer" in s for s in momentum.values())
    assert ckpt["scheduler"]["last_epoch"] == 1  # the constant warm-up wrapper, stepped once
    rng = ckpt["rng_state"]
    assert {"python", "numpy", "torch"} <= set(rng) and ("cuda" in rng) == torch.cuda.is_available()
    assert rng["torch"].dtype == torch.uint8 and rng["torch"].numel() > 0


def _learned(path):
    sd = load_checkpoint(str(path))["state_dict"]
    return {k: v for k, v in sd.items() if k not in ("token_prefix", "token_suffix")}


def test_run_killed_mid_epoch_and_resumed_equals_uninterrupted_run(tmp_path, pets_root, tiny_clip_path):
    """CoCoOp with the yaml's random augmentation (random_resized_crop, random_flip), batch size 1, 3 epochs
    of 6 batches; the run SIGKILLs itself as it logs batch 3 of epoch 2 (epoch 1's checkpoint exists, epoch
    2's is not begun), then is restarted with --resume."""
    opts = [
        "OPTIM.MAX_EPOCH",
        "3",
        "TRAIN.CHECKPOINT_FREQ",
        "1",
        "TRAIN.PRINT_FREQ",
        "1",
        "TRAINER.COCOOP.PREC",
        "fp32",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_train_py(train_argv(pets_root, whole, tiny_clip_path, *opts), tmp_path / "whole.out") == 0

    argv = train_argv(pets_root, killed, tiny_clip_path, *opts)
    proc, log = start_train_py(argv, tmp_path / "killed.out", kill_at_line="epoch [2/3] batch [3/6]")
    try:
        proc.wait(timeout=300)
    finally:
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert "epoch [2/3] batch [2/6]" in (killed / "log.txt").read_text()
    assert not (killed / "metrics.json").exists()
    assert read_pointer(str(killed / "prompt_learner")) == str(killed / "prompt_learner" / "model.pth.tar-1")
    assert not [f for f in files_under(killed) if f.endswith(".tmp")]

    resumed = run_train_py(
        train_argv(pets_root, killed, tiny_clip_path, *opts, flags=["--resume", str(killed)]), tmp_path / "resumed.out"
    )
    assert resumed == 0, (tmp_path / "resumed.out").read_text()[-3000:]
    log_text = (killed / "log.txt").read_text()
    assert "Found checkpoint" in log_text and "Previous epoch: 1" in log_text

    a, b = (
        _learned(whole / "prompt_learner" / "model.pth.tar-3"),
        _learned(killed / "prompt_learner" / "model.pth.tar-3"),
    )
    assert set(a) == set(b) and "ctx" in a and any(k.startswith("meta_net.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after kill + resume"
    assert not torch.equal(a["ctx"], _learned(whole / "prompt_learner" / "model.pth.tar-1")["ctx"])  # it did learn
    m_whole, m_killed = read_json(whole / "metrics.json"), read_json(killed / "metrics.json")
    assert m_whole["metrics"]["accuracy"] == m_killed["metrics"]["accuracy"]
    assert m_whole["metrics"]["correct"] == m_killed["metrics"]["correct"]
