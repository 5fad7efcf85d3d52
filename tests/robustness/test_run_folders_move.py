"""An eval-only run folder finds its model run relative to itself: a pair of run folders moved or copied
together predicts as before; one copied alone says what is missing and takes --model-dir
(model_dir=); where the recorded model run and the one beside the copy both exist and differ, nothing
is guessed."""

import json
import os
import shutil

import pytest
import torch

import coop_toolkit as ct
import predict
import train
from dasslite.errors import RunFolderError, UserFileNotFoundError

from .conftest import eval_argv


@pytest.fixture(scope="module")
def pair(trained_coop, tiny_clip_path, tmp_path_factory):
    """runs/model (a CoOp run) and runs/eval (its --eval-only run), and the eval run's predictions."""
    root, trained = trained_coop
    base = tmp_path_factory.mktemp("pair") / "runs"
    shutil.copytree(trained, base / "model")
    train.main(eval_argv(root, base / "eval", base / "model", tiny_clip_path, "TRAINER.COOP.N_CTX", "2"))
    images = os.path.join(root, "oxford_pets", "images")
    return base, images, rows(base / "eval", images, base.parent / "before.json")


def rows(run_dir, images, out, *flags):
    predict.main([str(run_dir), images, "--out", str(out), "--topk", "3", *flags])
    return json.loads(out.read_text())


def test_run_json_records_the_model_run_relative_to_the_eval_run(pair):
    base, _, before = pair
    weights = json.loads((base / "eval" / "run.json").read_text())["weights"]
    assert weights == {"model_dir": str(base / "model"), "model_dir_relative": "../model", "epoch": 1}
    assert len(before) > 4 and all(r["error"] is None for r in before)


def test_a_pair_moved_together_predicts_the_same(pair, tmp_path):
    base, images, before = pair
    moved = tmp_path / "elsewhere" / "runs"
    shutil.copytree(base, moved)
    assert rows(moved / "eval", images, tmp_path / "a.json") == before  # the original still there: same bytes
    os.rename(base, base.parent / "away")  # the recorded absolute path is gone
    try:
        assert rows(moved / "eval", images, tmp_path / "b.json") == before
    finally:
        os.rename(base.parent / "away", base)


def test_an_eval_run_copied_alone_names_what_is_missing_and_takes_model_dir(pair, tmp_path):
    base, images, before = pair
    alone = tmp_path / "alone" / "eval"
    shutil.copytree(base / "eval", alone)
    os.rename(base, base.parent / "away")
    try:
        with pytest.raises(UserFileNotFoundError) as error:
            ct.load_run(alone)
        message = str(error.value)
        assert str(base / "model") in message and str(tmp_path / "alone" / "model") in message
        assert "--model-dir" in message
        model = base.parent / "away" / "model"
        assert rows(alone, images, tmp_path / "c.json", "--model-dir", str(model)) == before
        run = ct.load_run(alone, model_dir=str(model))
        api = [p.topk for p in run.predict(images, topk=3)]
        assert api == [[(t["label"], t["probability"]) for t in r["topk"]] for r in before]
    finally:
        os.rename(base.parent / "away", base)


def test_two_different_model_runs_are_not_guessed_between(pair, tmp_path):
    base, images, _ = pair
    copy = tmp_path / "runs"
    shutil.copytree(base, copy)
    checkpoint = copy / "model" / "prompt_learner" / "model.pth.tar-1"
    state = torch.load(checkpoint, weights_only=False)
    state["state_dict"]["ctx"] += 1.0  # another training's prompt
    torch.save(state, checkpoint)
    with pytest.raises(RunFolderError, match="both folders exist and hold different checkpoints.*--model-dir"):
        ct.load_run(copy / "eval")
