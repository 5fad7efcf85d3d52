"""User errors (every named error) print one `error: ...` message and exit non-zero
without a Python traceback; --debug shows the traceback."""

import os
import subprocess
import sys

import pytest

import train
from coop_toolkit.trainers.clip_backbone import BackboneNotFoundError
from dasslite.data.images import BadImagesError, ImageReadError
from dasslite.data.splits import SplitFileError
from dasslite.engine.checkpoint import CheckpointKeysError, UnsafeCheckpointError
from dasslite.errors import CheckpointError, ConfigError, DataError, RunFolderError, UserError
from dasslite.registry import UnknownNameError

from .conftest import REPO, subprocess_env, train_argv


def test_every_named_error_is_a_user_error():
    for cls in (
        UnknownNameError,
        BackboneNotFoundError,
        UnsafeCheckpointError,
        CheckpointError,
        CheckpointKeysError,
        ConfigError,
        RunFolderError,
        DataError,
        ImageReadError,
        BadImagesError,
        SplitFileError,
    ):
        assert issubclass(cls, UserError), cls


CASES = {
    "unknown_trainer": (["--trainer", "CoOOp"], [], 'error: Unknown trainer "CoOOp". Did you mean "CoOp"?'),
    "unknown_key": ([], ["OPTIM.LRR", "0.1"], 'error: Unknown config key "OPTIM.LRR"'),
    "bad_value": ([], ["OPTIM.LR", "-1.0"], "error: OPTIM.LR must be a positive finite number; got -1.0."),
    "missing_resume": (["--resume", "/nonexistent/run"], [], 'error: --resume "/nonexistent/run": no such folder'),
}


@pytest.mark.parametrize("case", CASES)
def test_user_error_prints_one_error_line_and_exits_2(tmp_path, pets_root, tiny_clip_path, capsys, case):
    flags, opts, first = CASES[case]
    argv = train_argv(pets_root, tmp_path / "out", tiny_clip_path, *opts, flags=flags)
    if "--trainer" in flags:  # the flag given last wins; drop the default one
        argv[argv.index("--trainer") + 1 : argv.index("--trainer") + 2] = [flags[1]]
    with pytest.raises(SystemExit) as exit_:
        train.cli(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(first) and err.count("\n") == 1 and "Traceback" not in err


def test_command_line_shows_no_traceback_unless_debug(tmp_path, pets_root, tiny_clip_path):
    argv = train_argv(pets_root, tmp_path / "out", tiny_clip_path, "OPTIM.LR", "0.0")
    run = [sys.executable, os.path.join(REPO, "train.py")]
    plain = subprocess.run([*run, *argv], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2
    assert plain.stderr == "error: OPTIM.LR must be a positive finite number; got 0.0.\n"
    with pytest.raises(ConfigError, match="OPTIM.LR must be a positive finite number"):  # the traceback's error
        train.cli(["--debug", *argv])
