"""Small builders shared by test packages (fixtures live in the conftest.py files)."""

import os
import sys


def cpu_run_opts(backbone):
    """KEY VALUE overrides of every short CPU run in the tests: the tiny CLIP, no workers, small test batches."""
    return [
        "MODEL.BACKBONE.NAME",
        backbone,
        "DATALOADER.NUM_WORKERS",
        "0",
        "DATALOADER.TEST.BATCH_SIZE",
        "8",
        "USE_CUDA",
        "False",
    ]


def set_keys(cfg, opts, sep="."):
    """Set config values given as {"OPTIM.LR": 0.1} (or with another `sep` between the key's parts)."""
    for key, value in opts.items():
        node = cfg
        *parents, leaf = key.split(sep)
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


# 1-epoch fp32 CoOp with two context vectors: the quickest run that trains and writes a checkpoint.
QUICK_COOP_OPTS = ("OPTIM.MAX_EPOCH", "1", "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX", "2")


def torchrun_argv(nproc):
    """The start of a torchrun command line; --standalone picks a free rendezvous port (unset MASTER_PORT)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]


def after_each_step(action, setattr=setattr):
    """Call action(trainer) after every training step (in-process tests pass pytest's monkeypatch.setattr
    so the hook is restored after)."""
    from dasslite.engine import hooks as H

    after_step = H.MetricPrinter.after_step

    def hooked(self):
        after_step(self)
        action(self.trainer)

    setattr(H.MetricPrinter, "after_step", hooked)


def signal_at(signum, epoch, batch, setattr=setattr):
    """Deliver `signum` to this process after batch `batch` of epoch `epoch` (both 1-based), as a scheduler
    would mid-training."""

    def deliver(trainer):
        if (trainer.epoch + 1, trainer.batch_idx + 1) == (epoch, batch):
            os.kill(os.getpid(), signum)

    after_each_step(deliver, setattr)
