"""One run per output folder. A run holds an exclusive lock on OUTPUT_DIR/.lock; a second
run refuses naming the holder; a lock left by a dead process is taken over."""

import fcntl
import os
import subprocess
import sys

import pytest

import train
from dasslite.engine.run_lock import RunLock
from dasslite.errors import RunFolderError

from .conftest import coop_argv


def test_second_run_into_a_held_folder_refuses_naming_the_holder(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(  # another process, as a concurrent run would be
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, b'pid %d on nodeA' % os.getpid())\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        with pytest.raises(RunFolderError, match=rf'"{out}" is in use by another run \(pid {holder.pid} on nodeA'):
            train.main(coop_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    finally:
        holder.kill()
        holder.wait()
    assert os.listdir(out) == [".lock"]  # nothing of the second run was written


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, pets_root, tiny_clip_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"pid {dead.pid} on nodeA\n")
    train.main(coop_argv(pets_root, out, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    log = (out / "log.txt").read_text()
    assert (out / "metrics.json").is_file()
    assert f'Taking over the stale lock of "{out}" left by pid {dead.pid} on nodeA' in log
    with RunLock(str(out)):  # released at the end of the run
        fd = os.open(out / ".lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
