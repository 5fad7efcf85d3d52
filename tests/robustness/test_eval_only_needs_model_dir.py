"""--eval-only with a trainer that learns parameters needs --model-dir (else it would
evaluate the untrained prompt and mark the run finished); a zero-shot trainer does not."""

import pytest
import torch.nn as nn

import train
from dasslite.engine.trainer import TrainerBase
from dasslite.errors import ConfigError
from dasslite.utils.io import read_json

from .conftest import coop_argv, train_argv


def test_eval_only_of_a_learning_trainer_without_model_dir_is_refused(tmp_path, trained_coop, tiny_clip_path):
    root, _ = trained_coop
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match=r"--eval-only with trainer CoOp, which learns parameters, needs --model-dir"):
        train.main(coop_argv(root, out, tiny_clip_path, flags=["--eval-only"]))
    assert not (out / "metrics.json").exists()


def test_zero_shot_eval_only_needs_no_model_dir(tmp_path, trained_coop, tiny_clip_path):
    root, _ = trained_coop
    out = tmp_path / "zs"
    train.main(
        train_argv(
            root, out, tiny_clip_path, "TRAINER.COOP.PREC", "fp32", trainer="ZeroshotCLIP", flags=["--eval-only"]
        )
    )
    assert read_json(out / "metrics.json")["finished"] is True


def test_learns_parameters_looks_at_the_registered_modules():
    """The rule is generic: any registered module with a parameter that requires grad."""
    trainer = TrainerBase()
    assert not trainer.learns_parameters()  # nothing registered (zero-shot)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    trainer.register_model("frozen", frozen)
    assert not trainer.learns_parameters()
    trainer.register_model("learner", nn.Linear(2, 2))
    assert trainer.learns_parameters()
