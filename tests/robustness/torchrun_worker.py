"""train.py's command line for torchrun, with one rank signalled mid-training (test_interrupt_under_torchrun.py).

With FIRST_ARGV (a shell-quoted train.py command line) the processes first train that run uninterrupted,
the reference to compare with, which saves the test a torchrun launch (seconds of imports per process).
Then rank SIGNAL_RANK gets signal SIGNAL after batch B of epoch E (SIGNAL_AT="E,B"), as when a scheduler or a
user signals one process of the job; every rank appends the epoch and batch of each step it trained to
STEPS_DIR/rank<RANK>.txt, so the test sees where each one stopped (only rank 0 writes the log).
"""

import os
import shlex
import sys

import dasslite.utils.tools
import train
from tests.helpers import after_each_step, signal_at


def record_steps(path):
    def record(trainer):
        with open(path, "a") as f:
            f.write(f"{trainer.epoch + 1} {trainer.batch_idx + 1}\n")

    after_each_step(record)


if __name__ == "__main__":
    # seconds per run, only logged (train.py imports it when it logs)
    dasslite.utils.tools.collect_env_info = lambda: "(environment report skipped in tests)"
    if os.environ.get("FIRST_ARGV"):
        train.main(shlex.split(os.environ["FIRST_ARGV"]))
    rank = os.environ["RANK"]
    record_steps(os.path.join(os.environ["STEPS_DIR"], f"rank{rank}.txt"))
    if rank == os.environ["SIGNAL_RANK"]:
        epoch, batch = map(int, os.environ["SIGNAL_AT"].split(","))
        signal_at(int(os.environ["SIGNAL"]), epoch, batch)
    train.cli(sys.argv[1:])
