"""MODEL.INIT_WEIGHTS warm-starts the learned modules (Dassl's load_pretrained_weights:
tensors matched by name and shape, the rest reported as discarded); a path that does not exist is an
error naming it, raised before anything is written."""

import pytest
import torch

import train
from dasslite.engine.checkpoint import load_pretrained_weights
from dasslite.errors import UserFileNotFoundError
from dasslite.utils.io import read_json

from .conftest import coop_argv


def test_init_weights_loads_the_learned_prompt(tmp_path, trained_coop, tiny_clip_path):
    """Evaluating the warm-started prompt gives the trained run's test result exactly."""
    root, trained = trained_coop
    weights = trained / "prompt_learner" / "model.pth.tar-1"
    out = tmp_path / "warm"
    train.main(coop_argv(root, out, tiny_clip_path, "MODEL.INIT_WEIGHTS", str(weights), flags=["--eval-only"]))
    assert f'Successfully loaded pretrained weights from "{weights}"' in (out / "log.txt").read_text()
    assert read_json(out / "metrics.json")["metrics"] == read_json(trained / "metrics.json")["metrics"]


def test_init_weights_matches_by_name_and_shape_and_reports_the_rest(tmp_path, caplog):
    module = torch.nn.Linear(3, 2)
    source = {"weight": torch.ones(2, 3), "bias": torch.ones(5), "extra": torch.zeros(1)}
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in source.items()}}, path)
    before = module.bias.detach().clone()
    load_pretrained_weights(module, str(path))
    assert torch.equal(module.weight.detach(), torch.ones(2, 3)) and torch.equal(module.bias.detach(), before)
    assert "Layers discarded due to unmatched keys or size: ['bias', 'extra']" in caplog.text


def test_init_weights_path_that_does_not_exist_is_named(tmp_path, trained_coop, tiny_clip_path):
    root, _ = trained_coop
    out, missing = tmp_path / "out", tmp_path / "nowhere.pth.tar"
    with pytest.raises(UserFileNotFoundError, match=rf'MODEL.INIT_WEIGHTS: checkpoint file not found: "{missing}"'):
        train.main(coop_argv(root, out, tiny_clip_path, "MODEL.INIT_WEIGHTS", str(missing)))
    assert not out.exists()
