"""Training stops at the first NaN/inf loss with an error naming epoch and batch and the likely
cause (fp16), and the last good checkpoint stays intact."""

import os

import pytest
import torch

import train
from coop_toolkit.trainers.prompt_trainer import PromptTrainer

from .conftest import train_argv


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_loss_stops_naming_epoch_batch_and_fp16_and_keeps_the_last_checkpoint(
    tmp_path, pets_root, tiny_clip_path, monkeypatch, bad
):
    out = tmp_path / "out"
    model_dir = out / "prompt_learner"
    snapshot = {}
    parse = PromptTrainer.parse_batch_train

    def poisoned(self, batch):
        image, label = parse(self, batch)
        if self.epoch == 1 and self.batch_idx == 0:  # epoch 2, batch 1: the forward pass yields non-finite logits
            snapshot.update({f: (model_dir / f).read_bytes() for f in os.listdir(model_dir)})
            image = torch.full_like(image, bad)
        return image, label

    monkeypatch.setattr(PromptTrainer, "parse_batch_train", poisoned)
    with pytest.raises(FloatingPointError) as err:
        train.main(train_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "1"))
    message = str(err.value)
    assert "Loss is infinite or NaN" in message
    assert "at epoch 2/3, batch 1/6" in message
    assert "fp16" in message and "PREC to fp32" in message
    assert snapshot.keys() == {"model.pth.tar-1", "checkpoint"}
    assert {f: (model_dir / f).read_bytes() for f in os.listdir(model_dir)} == snapshot  # byte for byte
    assert not (out / "metrics.json").exists()
