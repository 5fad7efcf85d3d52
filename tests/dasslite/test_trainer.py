import json
import logging
import os
import re

import pytest
import torch

from dasslite.engine.build import build_trainer
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.engine.hooks import HookBase
from dasslite.registry import UnknownNameError
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import set_random_seed

from .toy import ToyLinear, params, same_params, toy_cfg


class Interrupt(Exception):
    pass


class StopAt(HookBase):
    """Simulates a killed run: raises when epoch `epoch` (0-based) is about to start."""

    def __init__(self, epoch):
        self.epoch = epoch

    def before_epoch(self):
        if self.trainer.epoch == self.epoch:
            raise Interrupt


def make_trainer(cfg, seed=1):
    set_random_seed(seed)
    return build_trainer(cfg)


@pytest.fixture
def trained(toy_root, tmp_path_factory):
    """One uninterrupted 4-epoch run with a checkpoint every epoch (shared, read-only)."""
    out = tmp_path_factory.mktemp("run")
    cfg = toy_cfg(toy_root, out, TRAIN__CHECKPOINT_FREQ=1)
    setup_logger(str(out))
    trainer = make_trainer(cfg)
    epoch_losses = []
    trainer.register_hooks([_LossRecorder(epoch_losses)])
    trainer.train()
    return trainer, out, epoch_losses


class _LossRecorder(HookBase):
    def __init__(self, out):
        self.out = out

    def before_epoch(self):
        self.sum, self.n = 0.0, 0

    def after_step(self):
        self.sum += self.trainer.loss_summary["loss"]
        self.n += 1

    def after_epoch(self):
        self.out.append(self.sum / self.n)


def test_training_run_outputs(trained):
    trainer, out, losses = trained
    assert losses[-1] < losses[0] / 2  # it learns
    model_dir = out / "linear"
    assert sorted(os.listdir(model_dir)) == ["checkpoint"] + [f"model.pth.tar-{i}" for i in range(1, 5)]
    assert (model_dir / "checkpoint").read_text() == "model.pth.tar-4\n"
    ckpt = load_checkpoint(str(model_dir / "model.pth.tar-4"))
    assert ckpt["epoch"] == 4 and ckpt["val_result"] is None
    assert set(ckpt) >= {"state_dict", "optimizer", "scheduler", "rng_state", "meta"}
    assert ckpt["meta"] == {"trainer": "ToyLinear", "model_name": "linear"}
    assert ckpt["scheduler"]["successor"]["last_epoch"] == 3  # stepped once per epoch, after the warmup
    assert not trainer.frozen.training  # unregistered modules are never switched to train mode

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["finished"] and metrics["metrics"]["total"] == 16
    assert metrics["run"]["epoch"] == 4 and metrics["run"]["eval_only"] is False
    assert metrics["run"]["trainer"] == "ToyLinear" and metrics["run"]["max_epoch"] == 4

    log = (out / "log.txt").read_text()
    assert re.search(
        r"^\[[\d-]+ [\d:]+\] epoch \[2/4\] batch \[2/4\] time \d\.\d{3} \(\d\.\d{3}\) data \d\.\d{3} \(\d\.\d{3}\) "
        r"loss \d\.\d{4} \(\d\.\d{4}\) acc [\d.]+ \([\d.]+\) lr 5\.0000e-02 eta \d:\d\d:\d\d$",
        log,
        re.M,
    )
    assert "epoch [1/4] batch [2/4]" in log and "epoch [1/4] batch [1/4]" not in log  # PRINT_FREQ 2
    assert re.search(r"^\[[\d-]+ [\d:]+\] epoch \[4/4\] summary: loss [\d.]+ acc [\d.]+ lr ", log, re.M)
    tail = log[log.index("Finish training") :]
    expected = [
        "Finish training",
        "Deploy the last-epoch model",
        "Evaluate on the *test* set",
        "=> result",
        "* total: 16",
        f"* accuracy: {metrics['metrics']['accuracy']:.1f}%",
        "Elapsed: 0:00:",
    ]
    positions = [tail.index(line) for line in expected]
    assert positions == sorted(positions)
    assert f"Checkpoint saved to {out}/linear/model.pth.tar-4" in log
    assert "No checkpoint found, train from scratch" in log


def test_resume_equals_uninterrupted_run(trained, toy_root, tmp_path):
    reference, _, _ = trained
    cfg = toy_cfg(toy_root, tmp_path, TRAIN__CHECKPOINT_FREQ=1)
    first = make_trainer(cfg)
    first.register_hooks([StopAt(2)])
    with pytest.raises(Interrupt):
        first.train()
    assert (tmp_path / "linear" / "checkpoint").read_text() == "model.pth.tar-2\n"
    assert not (tmp_path / "metrics.json").exists()

    resumed = make_trainer(cfg, seed=123)  # a different seed: resume must restore the RNG state itself
    resumed.train()
    assert resumed.start_epoch == 2
    assert same_params(params(resumed), params(reference))
    assert not same_params(params(first), params(reference))  # the comparison can fail
    reference_json = json.loads((trained[1] / "metrics.json").read_text())
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == reference_json["metrics"]


def test_non_finite_loss_stops_before_updating(toy_root, tmp_path, monkeypatch):
    monkeypatch.setattr(ToyLinear, "nan_at", (2, 3))
    trainer = make_trainer(toy_cfg(toy_root, tmp_path, TRAIN__CHECKPOINT_FREQ=1))
    with pytest.raises(FloatingPointError) as err:
        trainer.train()
    msg = str(err.value)
    assert "epoch 2/4" in msg and "batch 3/4" in msg and "fp16" in msg and "fp32" in msg
    assert torch.isfinite(trainer.model[1].weight).all()  # the NaN never reached the weights
    model_dir = tmp_path / "linear"
    assert sorted(os.listdir(model_dir)) == ["checkpoint", "model.pth.tar-1"]
    assert (model_dir / "checkpoint").read_text() == "model.pth.tar-1\n"
    ckpt = load_checkpoint(str(model_dir / "model.pth.tar-1"))
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "metrics.json").exists()


def test_eval_only_load_model(trained, toy_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _, run_dir, _ = trained
    cfg = toy_cfg(toy_root, tmp_path)
    trainer = make_trainer(cfg, seed=5)
    assert trainer.load_model(str(run_dir), epoch=4) == 4
    assert f'Loading weights to linear from "{run_dir}/linear/model.pth.tar-4" (epoch = 4)' in caplog.messages
    trainer.test()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"]["eval_only"] is True and metrics["run"]["epoch"] == 4
    assert metrics["metrics"] == json.loads((run_dir / "metrics.json").read_text())["metrics"]
    with pytest.raises(FileNotFoundError, match=r"model-best\.pth\.tar.*model\.pth\.tar-3"):
        trainer.load_model(str(run_dir))


def test_best_val_selection(toy_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    trainer = make_trainer(toy_cfg(toy_root, tmp_path, TEST__FINAL_MODEL="best_val"))
    val_results, test = [], trainer.test

    def recording_test(split=None):
        result = test(split)
        if split == "val":
            val_results.append((result, trainer.epoch + 1))
        return result

    trainer.test = recording_test
    trainer.train()
    files = sorted(os.listdir(tmp_path / "linear"))
    assert files == ["checkpoint", "model-best.pth.tar", "model.pth.tar-4"]
    assert (tmp_path / "linear" / "checkpoint").read_text() == "model.pth.tar-4\n"
    best = load_checkpoint(str(tmp_path / "linear" / "model-best.pth.tar"))
    best_result, best_epoch = max(val_results, key=lambda r: (r[0], -r[1]))  # the first best epoch wins
    assert (best["val_result"], best["epoch"]) == (best_result, best_epoch) and len(val_results) == 4
    assert "Deploy the model with the best val performance" in caplog.messages
    assert json.loads((tmp_path / "metrics.json").read_text())["run"]["epoch"] == best["epoch"]


def test_unknown_trainer_lists_choices(toy_root, tmp_path):
    cfg = toy_cfg(toy_root, tmp_path)
    cfg.TRAINER.NAME = "ToyLinaer"
    with pytest.raises(UnknownNameError, match=r'Did you mean "ToyLinear".*TRAINER.NAME'):
        build_trainer(cfg)


def test_set_model_mode_rejects_unknown_mode(toy_root, tmp_path):
    trainer = make_trainer(toy_cfg(toy_root, tmp_path))
    trainer.set_model_mode("eval")
    assert not trainer.model.training
    with pytest.raises(ValueError, match="mode"):
        trainer.set_model_mode("training")
    with pytest.raises(KeyError, match="linear"):
        trainer.set_model_mode("train", names=["prompt_learner"])


def test_every_batch_is_printed_when_an_epoch_is_shorter_than_print_freq(toy_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    make_trainer(toy_cfg(toy_root, tmp_path, TRAIN__PRINT_FREQ=5, OPTIM__MAX_EPOCH=1)).train()
    lines = [m for m in caplog.messages if m.startswith("epoch [1/1] batch")]
    assert [line.split()[3] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert " lr 1.0000e-05 eta " in lines[0]


def test_distributed_run_sets_sampler_epoch(toy_root, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        trainer = make_trainer(toy_cfg(toy_root, tmp_path / "out", OPTIM__MAX_EPOCH=3))
        seen = []

        class Spy(HookBase):
            def after_step(self):
                seen.append(self.trainer.train_loader_x.sampler.epoch)

        trainer.register_hooks([Spy()])
        trainer.train()
    finally:
        dist.destroy_process_group()
    assert sorted(set(seen)) == [0, 1, 2]  # a different shuffle every epoch
    assert (tmp_path / "out" / "metrics.json").exists() and (tmp_path / "out" / "linear" / "model.pth.tar-3").exists()


def test_tensorboard_scalars_when_available(toy_root, tmp_path, monkeypatch):
    import sys
    import types

    calls = {"scalars": set(), "closed": False}

    class FakeWriter:
        def __init__(self, log_dir):
            calls["log_dir"] = log_dir

        def add_scalar(self, tag, value, step=None):
            calls["scalars"].add(tag)

        def close(self):
            calls["closed"] = True

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    make_trainer(toy_cfg(toy_root, tmp_path, OPTIM__MAX_EPOCH=1)).train()
    assert calls["log_dir"] == str(tmp_path / "tensorboard") and calls["closed"]
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy", "test/macro_f1"} <= calls["scalars"]
