"""An eval-only run folder finds its model run relative to itself: a pair of run folders moved or copied
together predicts as before; one copied alone says what is missing and takes --model-dir
(model_dir=); where the recorded model run and the one beside the copy both exist and differ, nothing
is guessed."""

import hashlib
import json
import os
import shutil

import pytest
import torch

import coop_toolkit as ct
import predict
import train
from dasslite.cli import run_cli
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
    digest = hashlib.sha256((base / "model" / "prompt_learner" / "model.pth.tar-1").read_bytes()).hexdigest()
    expected = {"model_dir": str(base / "model"), "model_dir_relative": "../model", "epoch": 1}
    assert weights == {**expected, "sha256": {"prompt_learner": digest}}
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


def retrain(checkpoint):
    """Other weights in `checkpoint`'s place, as a model run trained again."""
    state = torch.load(checkpoint, weights_only=False)
    state["state_dict"]["ctx"] += 1.0
    torch.save(state, checkpoint)


def edit_weights(run_dir, **fields):
    """Set run.json's weights fields (None: remove the field)."""
    record = json.loads((run_dir / "run.json").read_text())
    record["weights"].update(fields)
    record["weights"] = {k: v for k, v in record["weights"].items() if v is not None}
    (run_dir / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize("how", ["recorded path", "beside", "--model-dir"])
def test_weights_other_than_those_evaluated_are_refused(pair, tmp_path, capsys, how):
    """run.json holds the sha256 of the checkpoint evaluated; wherever the weights are found, other
    bytes are an error naming the file (one error: line, exit 2 in predict.py)."""
    base, images, before = pair
    copy = tmp_path / "runs"
    shutil.copytree(base, copy)
    retrain(copy / "model" / "prompt_learner" / "model.pth.tar-1")
    if how == "recorded path":  # the eval run moved alone; its recorded model run was retrained since
        edit_weights(copy / "eval", model_dir=str(copy / "model"), model_dir_relative="../nowhere")
    if how == "beside":  # moved with a retrained model run; the recorded one is gone
        edit_weights(copy / "eval", model_dir=str(tmp_path / "gone"))
    flags = ["--model-dir", str(copy / "model")] if how == "--model-dir" else []
    run_dir = base / "eval" if how == "--model-dir" else copy / "eval"
    with pytest.raises(SystemExit) as stop:
        run_cli(predict.main, [str(run_dir), images, *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model.pth.tar-1" in err[0] and "--model-dir" in err[0]


def test_a_run_json_without_hashes_loads_as_before(pair, tmp_path):
    """Runs evaluated before run.json recorded checkpoint hashes are not checked."""
    base, images, before = pair
    copy = tmp_path / "runs"
    shutil.copytree(base, copy)
    edit_weights(copy / "eval", model_dir=str(tmp_path / "gone"), sha256=None)
    retrain(copy / "model" / "prompt_learner" / "model.pth.tar-1")
    assert rows(copy / "eval", images, tmp_path / "a.json") != before
