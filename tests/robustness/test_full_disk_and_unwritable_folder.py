"""A full disk or an unwritable output folder stops the run with an error that names the
path and says that --resume continues; when log.txt cannot be written the run stops at once."""

import errno
import logging
import os

import pytest

import train
from dasslite.engine import checkpoint as ckpt_mod
from dasslite.errors import RunFolderError
from dasslite.utils.logger import setup_logger

from .conftest import coop_argv


def test_full_disk_while_saving_a_checkpoint_names_the_path_and_resume(
    tmp_path, pets_root, tiny_clip_path, monkeypatch
):
    def disk_full(obj, f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_mod.torch, "save", disk_full)
    out = tmp_path / "out"
    with pytest.raises(RunFolderError) as err:
        train.main(coop_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    message = str(err.value)
    assert f'Cannot write "{out}/prompt_learner": No space left on device' in message
    assert f"rerun the same command with --resume {out}" in message
    assert not [f for f in os.listdir(out / "prompt_learner") if f.endswith(".tmp")]


def test_output_folder_that_cannot_be_created_is_named(tmp_path, pets_root, tiny_clip_path):
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "out"
    with pytest.raises(RunFolderError, match=rf'lock file "{out}/.lock" \(Not a directory\); choose a writable'):
        train.main(coop_argv(pets_root, out, tiny_clip_path))


def test_log_that_cannot_be_written_stops_the_run_at_once(tmp_path):
    os.symlink("/dev/full", tmp_path / "log.txt")  # every write fails with ENOSPC
    setup_logger(str(tmp_path), resume=True)
    try:
        with pytest.raises(RunFolderError, match=rf'Cannot write the log "{tmp_path}/log.txt": No space left'):
            logging.getLogger("train").info("epoch [1/10] batch [1/5] ...")
    finally:
        setup_logger(None)
