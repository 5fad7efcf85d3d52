"""An empty, truncated, non-dict or foreign checkpoint, and one with NaN or inf in a learned
tensor, is refused naming the path, the key and the fix; the `checkpoint` pointer may only name a file in
its own folder; temp files left by a killed write are removed when the next run starts."""

import os

import pytest
import torch

import train
from dasslite.engine.checkpoint import checked_state_dict, load_checkpoint, read_pointer
from dasslite.errors import CheckpointError

from .conftest import coop_argv, copy_run, eval_argv


def _truncated(path, good):
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


BAD_FILES = {
    "empty": (lambda path, good: path.write_bytes(b""), r"is empty \(0 bytes\)"),
    "truncated": (_truncated, r"is truncated or not a torch file"),
    "non_dict": (lambda path, good: torch.save(torch.zeros(3), path), r"holds a Tensor, not a checkpoint dict"),
    "foreign": (lambda path, good: torch.save({"model": {}}, path), r'key "state_dict" is missing'),
    "text": (lambda path, good: path.write_text("not a checkpoint\n"), r"is (corrupt|truncated or not a torch)"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_checkpoint_file_is_refused_naming_path_and_fix(tmp_path, trained_coop, kind):
    _, trained = trained_coop
    write, message = BAD_FILES[kind]
    path = tmp_path / "model.pth.tar-1"
    write(path, trained / "prompt_learner" / "model.pth.tar-1")
    with pytest.raises(CheckpointError, match=rf'Checkpoint "{path}"') as err:
        checked_state_dict(load_checkpoint(str(path)), str(path))
    assert err.match(message) and ("Delete it" in str(err.value) or "Is it a file of this toolkit" in str(err.value))


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_learned_tensor_is_refused_before_evaluating(tmp_path, trained_coop, tiny_clip_path, value):
    root, trained = trained_coop
    model_dir = copy_run(trained, tmp_path / "run")
    path = model_dir / "prompt_learner" / "model.pth.tar-1"
    ckpt = load_checkpoint(str(path))
    ckpt["state_dict"]["ctx"][0, 0] = value
    torch.save(ckpt, path)
    out = tmp_path / "eval"
    with pytest.raises(CheckpointError, match=rf'Checkpoint "{path}" has NaN or infinite values in ctx;'):
        train.main(eval_argv(root, out, model_dir, tiny_clip_path, "TRAINER.COOP.N_CTX", "2"))
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("name", ["../other/model.pth.tar-1", "/etc/passwd", ".."])
def test_checkpoint_pointer_may_only_name_a_file_in_its_folder(tmp_path, trained_coop, tiny_clip_path, name):
    root, trained = trained_coop
    out = copy_run(trained, tmp_path / "out", finished=False)
    (out / "prompt_learner" / "checkpoint").write_text(name + "\n")
    with pytest.raises(CheckpointError, match=r"which is not a file in its own folder"):
        read_pointer(str(out / "prompt_learner"))
    with pytest.raises(CheckpointError, match=rf'pointer "{out}/prompt_learner/checkpoint" names'):
        train.main(["--resume", str(out), *coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1")])


def test_temp_files_of_killed_writes_are_removed_at_the_next_start(tmp_path, trained_coop, tiny_clip_path):
    root, trained = trained_coop
    out = copy_run(trained, tmp_path / "out", finished=False)
    left = [out / "prompt_learner" / ".model.pth.tar-2.k3j_x9ab.tmp", out / ".metrics.json.a1b2c3d4.tmp"]
    for path in left:
        path.write_bytes(b"half")
    (out / "notes.tmp").write_text("the user's own file")
    train.main(["--resume", str(out), *coop_argv(root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1")])
    assert not any(path.exists() for path in left)
    assert (out / "notes.tmp").exists() and (out / "metrics.json").exists()
    assert (
        "Removed temp files of writes that did not finish: .metrics.json.a1b2c3d4.tmp" in (out / "log.txt").read_text()
    )
    assert os.path.exists(out / "prompt_learner" / "model.pth.tar-1")
