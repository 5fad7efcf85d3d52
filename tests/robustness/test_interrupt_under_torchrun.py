"""A signal that reaches one process of a torchrun job stops every process at the same batch.

Each rank records a SIGINT / SIGTERM itself; were it to act on its own flag, the signalled rank would
stop after batch k while the others start batch k+1 and wait forever in DDP's gradient all-reduce.
Here rank 1 alone gets SIGTERM (rank 0 writes the log and the checkpoints, so it must learn of it from
rank 1): the job must end promptly, both ranks after the same batch, and --resume must end equal to the
uninterrupted 2-process run.
"""

import os
import re
import shlex
import signal
import subprocess

import pytest
import torch

from dasslite.engine.checkpoint import load_checkpoint, read_pointer
from dasslite.utils.io import read_json
from tests.helpers import torchrun_argv

from .conftest import REPO, coop_argv, subprocess_env
from .test_nothing_lost_on_interrupt import OPTS  # 3 epochs of 3 global batches of 2

WORKER = os.path.join(REPO, "tests", "robustness", "torchrun_worker.py")


def torchrun(script, argv, **env):
    """2 processes (gloo on the CPU). A job that hangs fails the test at the timeout: torchrun then gets
    SIGTERM and kills its workers (each in a session of its own) after its shutdown timeout, here 5 s."""
    env = {**subprocess_env(), "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "5", **env}
    env.pop("MASTER_PORT", None)
    cmd = [*torchrun_argv(2), script, *argv]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"the torchrun job hung (a rank left waiting in a collective):\n{(out + err)[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_sigterm_to_one_rank_stops_all_at_the_same_batch(tmp_path, pets_root, tiny_clip_path):
    whole, cut, steps = tmp_path / "whole", tmp_path / "cut", tmp_path / "steps"
    steps.mkdir()
    signal_env = {"SIGNAL_RANK": "1", "SIGNAL": str(int(signal.SIGTERM)), "SIGNAL_AT": "2,1", "STEPS_DIR": str(steps)}
    first = shlex.join(coop_argv(pets_root, whole, tiny_clip_path, *OPTS))  # the uninterrupted run, first
    proc = torchrun(WORKER, coop_argv(pets_root, cut, tiny_clip_path, *OPTS), FIRST_ARGV=first, **signal_env)
    report = proc.stdout + proc.stderr
    assert proc.returncode != 0 and (whole / "metrics.json").is_file(), report[-3000:]
    # torchrun reports the first rank to exit, with 128 + SIGTERM from the safe stop (it then ends the
    # others with SIGTERM, so their codes depend on timing)
    root_cause = report.split("Root Cause (first observed failure):")[1]
    assert re.search(r"exitcode\s*:\s*143\b", root_cause), report[-3000:]
    # both ranks trained epoch 1 and batch 1 of epoch 2, and no further
    trained = ["1 1", "1 2", "1 3", "2 1"]
    assert [(steps / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)] == [trained, trained]
    assert read_pointer(str(cut / "prompt_learner")) == str(cut / "prompt_learner" / "model.pth.tar-1")
    assert not (cut / "metrics.json").exists()
    log = re.sub(r"(?m)^\[[\d-]+ [\d:]+\] ", "", (cut / "log.txt").read_text())
    lines = [line for line in log.splitlines() if line.startswith("Stopped by")]
    assert len(lines) == 1 and lines[0].startswith("Stopped by SIGTERM at epoch 2/3, batch 1/3 (last saved: epoch 1)")

    command = shlex.split(lines[0].split("; resume with: ")[1])
    assert command[:4] == ["torchrun", "--nproc_per_node", "2", "train.py"]
    proc = torchrun("train.py", command[4:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Previous epoch: 1" in (cut / "log.txt").read_text()
    a = load_checkpoint(str(whole / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    b = load_checkpoint(str(cut / "prompt_learner" / "model.pth.tar-3"))["state_dict"]["ctx"]
    assert torch.equal(a, b)
    assert read_json(whole / "metrics.json")["metrics"] == read_json(cut / "metrics.json")["metrics"]
