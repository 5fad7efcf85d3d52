"""coop_toolkit.train(cfg) guards a run folder as train.py does (both go through coop_toolkit/launch.py):
a finished run is refused unless overwrite=True, which starts from scratch; a SIGINT stops training at a
safe point with TrainingStopped, and train(cfg, resume=True) ends equal to the uninterrupted run."""

import os
import signal

import pytest
import torch

import coop_toolkit as ct
import train
from coop_toolkit.launch import FinishedRunError
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.engine.interrupt import TrainingInterrupted
from dasslite.errors import ConfigError, UserFileNotFoundError
from dasslite.utils.io import read_json
from dasslite.utils.logger import setup_logger
from tests.datasets.layouts import build_oxford_pets
from tests.helpers import signal_at

from .conftest import coop_argv, copy_run, files_under
from .test_nothing_lost_on_interrupt import OPTS


def api_cfg(root, out, backbone, *opts):
    """The config of `python train.py <coop_argv(...)>`, made with the API's get_cfg."""
    args = train.parse_args(coop_argv(root, out, backbone, *opts))
    fixed = ["DATASET.ROOT", args.root, "OUTPUT_DIR", args.output_dir, "SEED", str(args.seed)]
    return ct.get_cfg(args.trainer, args.config_file, args.dataset_config_file, opts=fixed + args.opts)


@pytest.fixture(autouse=True)
def close_log():
    yield
    setup_logger(None)  # stop writing into the last run's log.txt


def test_a_finished_folder_is_refused_naming_it_and_the_fix(tmp_path, trained_coop, tiny_clip_path):
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out")
    before = {f: (out / f).read_bytes() for f in files_under(out)}
    with pytest.raises(FinishedRunError, match=rf'"{out}" already holds a finished run.*another OUTPUT_DIR, or pass '):
        ct.train(api_cfg(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    assert {f: (out / f).read_bytes() for f in files_under(out)} == before  # not even log.txt was touched
    with pytest.raises(ConfigError, match=r"overwrite=True starts from scratch and resume=True continues"):
        ct.train(api_cfg(root, out, tiny_clip_path), overwrite=True, resume=True)
    missing = tmp_path / "missing"
    with pytest.raises(UserFileNotFoundError, match=rf'resume=True "{missing}": no such folder'):
        ct.train(api_cfg(root, missing, tiny_clip_path), resume=True)
    assert not missing.exists()


def test_overwrite_trains_from_scratch_and_removes_the_old_checkpoints(tmp_path, trained_coop, tiny_clip_path):
    """The old run (1 epoch of 2 context tokens) would be refused; overwrite=True trains 4 tokens anew."""
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out")
    (out / "prompt_learner" / "model.pth.tar-7").write_bytes((out / "prompt_learner" / "model.pth.tar-1").read_bytes())
    ct.train(api_cfg(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1", "TRAINER.COOP.N_CTX", "4"), overwrite=True)
    log = (out / "log.txt").read_text()
    assert "No checkpoint found, train from scratch" in log and "Found checkpoint" not in log
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]  # -7 removed
    assert tuple(load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-1"))["state_dict"]["ctx"].shape) == (4, 64)
    assert read_json(out / "metrics.json")["finished"] is True


def test_interrupted_api_run_resumes_to_the_uninterrupted_result(tmp_path, tiny_clip_path, monkeypatch):
    build_oxford_pets(str(tmp_path / "data"))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    ct.train(api_cfg(tmp_path / "data", whole, tiny_clip_path, *OPTS))

    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN under nohup
    signal_at(signal.SIGINT, epoch=2, batch=1, setattr=monkeypatch.setattr)
    try:
        with pytest.raises(TrainingInterrupted) as info:
            ct.train(api_cfg(tmp_path / "data", cut, tiny_clip_path, *OPTS))
    except KeyboardInterrupt:
        pytest.fail("the SIGINT was not turned into TrainingInterrupted at a safe point")
    monkeypatch.undo()
    stop = info.value
    assert isinstance(stop, ct.TrainingStopped) and stop.saved_epoch == 1 and stop.exit_code == 128 + signal.SIGINT
    assert str(stop) == (
        f'Training in "{cut}" stopped by SIGINT at epoch 2/3, batch 1/3 (last saved: epoch 1); '
        "coop_toolkit.train(cfg, resume=True) continues from there."
    )
    assert signal.getsignal(signal.SIGINT) is before  # the handlers are restored
    assert sorted(os.listdir(cut / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]
    assert not (cut / "metrics.json").exists()

    ct.train(api_cfg(tmp_path / "data", cut, tiny_clip_path, *OPTS), resume=True)
    assert "Previous epoch: 1" in (cut / "log.txt").read_text()
    a = load_checkpoint(str(whole / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    b = load_checkpoint(str(cut / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    assert torch.equal(a, b)
    assert read_json(whole / "metrics.json")["metrics"] == read_json(cut / "metrics.json")["metrics"]
