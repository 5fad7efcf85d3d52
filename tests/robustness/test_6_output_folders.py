"""A run whose output folder already holds a finished run refuses to overwrite it unless told
to (--overwrite); an unfinished (killed) run's folder is resumed; the protocol scripts skip finished runs."""

import json
import os
import subprocess

import pytest

import train
from dasslite.utils.io import read_json

from .conftest import REPO, files_under, train_argv


@pytest.fixture
def finished_run(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    argv = train_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1", "TRAINER.COCOOP.PREC", "fp32")
    train.main(argv)
    return out, argv


def _snapshot(out):
    return {f: (out / f).read_bytes() for f in files_under(out)}


def test_finished_run_is_not_overwritten_unless_told_to(finished_run):
    out, argv = finished_run
    before = _snapshot(out)
    with pytest.raises(
        SystemExit,
        match=rf'"{out}" already holds a finished run \(metrics.json\)\. Choose another '
        r"--output-dir, or pass --overwrite",
    ):
        train.main(argv)
    assert _snapshot(out) == before  # not even log.txt was touched


def test_overwrite_flag_replaces_a_finished_run(finished_run):
    out, argv = finished_run
    os.remove(out / "prompt_learner" / "model.pth.tar-1")
    os.remove(out / "prompt_learner" / "checkpoint")  # else it would resume (and skip) the finished epoch
    stamp = read_json(out / "metrics.json")
    train.main(["--overwrite", *argv])
    assert read_json(out / "metrics.json")["finished"] is True
    assert (out / "prompt_learner" / "model.pth.tar-1").is_file()
    assert stamp["run"] == read_json(out / "metrics.json")["run"]


def test_unfinished_metrics_json_does_not_block_a_rerun(finished_run):
    """The protocol scripts rerun a folder whose metrics.json lacks "finished": true; train.py agrees."""
    out, argv = finished_run
    record = read_json(out / "metrics.json")
    record["finished"] = False
    (out / "metrics.json").write_text(json.dumps(record))
    train.main(argv)
    assert read_json(out / "metrics.json")["finished"] is True


def test_protocol_scripts_skip_a_finished_run(finished_run, tmp_path):
    """base2new_train.sh with a PYTHON that would fail if called: the finished folder is skipped."""
    out, _ = finished_run
    dest = (
        tmp_path
        / "output"
        / "base2new"
        / "train_base"
        / "oxford_pets"
        / "shots_16"
        / "CoCoOp"
        / "vit_b16_c4_ep10_batch1_ctxv1"
        / "seed1"
    )
    dest.parent.mkdir(parents=True)
    os.rename(out, dest)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "cocoop", "base2new_train.sh"), "oxford_pets", "1"],
        cwd=tmp_path,
        env=dict(os.environ, OUTPUT=str(tmp_path / "output"), PYTHON="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"The results exist at {dest} (so skip this job)" in result.stdout
