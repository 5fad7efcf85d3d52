"""--overwrite starts from scratch; it never resumes the folder's old checkpoint."""

import os

import train
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.utils.io import read_json

from .conftest import coop_argv, copy_run


def test_overwrite_trains_from_scratch_under_the_new_settings(tmp_path, trained_coop, tiny_clip_path):
    """The old run (1 epoch, 2 context tokens) would be resumed (0 epochs trained) or crash on the shape
    change; --overwrite trains 2 epochs of 4 tokens and reports that model."""
    root, finished = trained_coop
    out = copy_run(finished, tmp_path / "out")
    train.main(
        ["--overwrite", *coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "2", "TRAINER.COOP.N_CTX", "4")]
    )
    log = (out / "log.txt").read_text()
    assert "No checkpoint found, train from scratch" in log and "Found checkpoint" not in log
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-2"]
    ckpt = load_checkpoint(str(out / "prompt_learner" / "model.pth.tar-2"))
    assert ckpt["epoch"] == 2 and tuple(ckpt["state_dict"]["ctx"].shape) == (4, 64)
    metrics = read_json(out / "metrics.json")
    assert metrics["finished"] is True and metrics["run"]["epoch"] == 2
    assert any(name.startswith("log.txt-") for name in os.listdir(out))  # the old log is kept aside
