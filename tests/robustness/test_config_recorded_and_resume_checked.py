"""Every run folder records its full config and its checkpoints carry it; --resume refuses
a folder trained with settings that change what is learned, allows a larger MAX_EPOCH with a warning, and
refuses a checkpoint past MAX_EPOCH and a folder that does not exist."""

import pytest
import yaml

import train
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.errors import CheckpointError, ConfigError, UserFileNotFoundError

from .conftest import coop_argv, copy_run


def test_run_folder_and_checkpoints_record_the_full_config(trained_coop):
    _, out = trained_coop
    recorded = (out / "config.yaml").read_text()
    ckpt = load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-1"))  # weights_only=True
    assert ckpt["config"] == recorded
    cfg = yaml.safe_load(recorded)
    assert cfg["SEED"] == 1 and cfg["TRAINER"]["NAME"] == "CoOp" and cfg["TRAINER"]["COOP"]["N_CTX"] == 2
    assert cfg["DATASET"]["NUM_SHOTS"] == 2 and cfg["OPTIM"]["MAX_EPOCH"] == 1


def test_resume_refuses_other_learning_settings_listing_the_keys(tmp_path, trained_coop, tiny_clip_path):
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out", finished=False)  # as if killed before its final test
    before = (out / "config.yaml").read_text()
    argv = coop_argv(root, out, tiny_clip_path, "OPTIM.LR", "0.5", "TRAINER.COOP.N_CTX", "4", seed=2)
    with pytest.raises(ConfigError) as err:
        train.main(["--resume", str(out), *argv])
    message = str(err.value)
    assert f'Cannot resume "{out}"' in message
    for line in (
        "SEED: recorded 1, now 2",
        "OPTIM.LR: recorded 0.002, now 0.5",
        "TRAINER.COOP.N_CTX: recorded 2, now 4",
    ):
        assert line in message
    assert "--overwrite" in message and "OPTIM.MAX_EPOCH" not in message
    assert (out / "config.yaml").read_text() == before  # refused before anything was written


def test_resume_with_a_larger_max_epoch_continues_with_a_warning(tmp_path, trained_coop, tiny_clip_path):
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out", finished=False)
    # DATALOADER.TEST.BATCH_SIZE does not change what is learned: no refusal
    train.main(coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "2", "DATALOADER.TEST.BATCH_SIZE", "4"))
    log = (out / "log.txt").read_text()
    assert "OPTIM.MAX_EPOCH changed from 1 to 2: the resumed LR schedule continues where it ended" in log
    assert "Previous epoch: 1" in log
    assert load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-2"))["epoch"] == 2


def test_checkpoint_epoch_past_max_epoch_is_an_error(tmp_path, trained_coop, tiny_clip_path):
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out", finished=False)
    with pytest.raises(CheckpointError, match=r"it is at epoch 1, past OPTIM.MAX_EPOCH 0\. Set OPTIM.MAX_EPOCH 1"):
        train.main(["--resume", str(out), *coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "0")])


def test_resume_of_a_missing_folder_is_an_error(tmp_path, trained_coop, tiny_clip_path):
    root, _ = trained_coop
    missing = tmp_path / "no_such_run"
    with pytest.raises(UserFileNotFoundError, match=rf'--resume "{missing}": no such folder'):
        train.main(["--resume", str(missing), *coop_argv(root, missing, tiny_clip_path)])
    assert not missing.exists()  # not a fresh start
