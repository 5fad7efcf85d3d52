"""Behaviour of the training loop, as hooks (the loop in trainer.py only dispatches to them).

Order matters and is fixed by SimpleTrainer.build_hooks(): at the end of an epoch the metrics are
printed (with the LR the epoch ran at), then the LR schedulers step, then best-val selection and
checkpointing run, so a checkpoint holds the state the next epoch starts from.
"""

import logging
import os
import sys
import time

import numpy as np
import torch.distributed as dist
from tqdm import tqdm

from ..errors import ConfigError
from ..log_format import END_OF_TRAINING
from ..utils.dist import is_dist, is_main_process
from ..utils.tools import format_seconds

logger = logging.getLogger(__name__)


class HookBase:
    """Every method is a no-op; `trainer` is set by TrainerBase.register_hooks."""

    trainer = None

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def close(self):
        """Release resources; runs even when training fails."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class ResumeHook(HookBase):
    """Resume from RESUME (or OUTPUT_DIR when empty) if it holds a checkpoint of every model."""

    def before_train(self):
        t = self.trainer
        directory = t.cfg.RESUME or t.output_dir
        t.start_epoch = t.resume_model_if_exist(directory)


class AverageMeter:
    def __init__(self):
        self.val = self.sum = self.avg = 0.0
        self.count = 0

    def update(self, val, n=1):
        self.val = float(val.item() if hasattr(val, "item") else val)
        self.sum += self.val * n
        self.count += n
        self.avg = self.sum / self.count


class MetricMeter:
    """Running averages of the scalars forward_backward returns, printed "name val (avg)"."""

    def __init__(self, delimiter=" "):
        self.meters = {}
        self.delimiter = delimiter

    def update(self, input_dict):
        if not isinstance(input_dict, dict):
            raise TypeError(f"forward_backward must return a dict of scalars, got {type(input_dict).__name__}")
        for k, v in input_dict.items():
            self.meters.setdefault(k, AverageMeter()).update(v)

    def __str__(self):
        return self.delimiter.join(f"{k} {m.val:.4f} ({m.avg:.4f})" for k, m in self.meters.items())

    def summary(self):
        return self.delimiter.join(f"{k} {m.avg:.4f}" for k, m in self.meters.items())


class MetricPrinter(HookBase):
    """The reference's batch line every PRINT_FREQ batches, an epoch summary, and a tqdm bar (stderr)."""

    def before_train(self):
        self.time_start = time.time()

    def before_epoch(self):
        t = self.trainer
        self.losses, self.batch_time, self.data_time = MetricMeter(), AverageMeter(), AverageMeter()
        self.epoch_start = time.time()
        self.bar = tqdm(
            total=t.num_batches,
            desc=f"epoch {t.epoch + 1}/{t.max_epoch}",
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            disable=not is_main_process(),
        )

    def after_step(self):
        t = self.trainer
        self.losses.update(t.loss_summary)
        self.batch_time.update(t.batch_time)
        self.data_time.update(t.data_time)
        self.bar.update(1)
        freq = t.cfg.TRAIN.PRINT_FREQ
        if (t.batch_idx + 1) % freq == 0 or t.num_batches < freq:
            self.bar.clear()
            logger.info(self.batch_line())
        n_iter = t.epoch * t.num_batches + t.batch_idx
        for name, meter in self.losses.meters.items():
            t.write_scalar("train/" + name, meter.avg, n_iter)
        t.write_scalar("train/lr", t.get_current_lr(), n_iter)

    def _eta(self):
        t = self.trainer
        remaining = (t.num_batches - t.batch_idx - 1) + (t.max_epoch - t.epoch - 1) * t.num_batches
        return format_seconds(self.batch_time.avg * remaining)

    def batch_line(self):
        t = self.trainer
        return " ".join(
            [
                f"epoch [{t.epoch + 1}/{t.max_epoch}]",
                f"batch [{t.batch_idx + 1}/{t.num_batches}]",
                f"time {self.batch_time.val:.3f} ({self.batch_time.avg:.3f})",
                f"data {self.data_time.val:.3f} ({self.data_time.avg:.3f})",
                str(self.losses),
                f"lr {t.get_current_lr():.4e}",
                f"eta {self._eta()}",
            ]
        )

    def after_epoch(self):
        t = self.trainer
        self.bar.close()
        logger.info(
            f"epoch [{t.epoch + 1}/{t.max_epoch}] summary: {self.losses.summary()} "
            f"lr {t.get_current_lr():.4e} time {format_seconds(time.time() - self.epoch_start)} "
            f"eta {self._eta()}"
        )

    def close(self):
        if getattr(self, "bar", None) is not None:
            self.bar.close()


class LRSchedulerHook(HookBase):
    """Steps every registered scheduler once per epoch (the reference's per-epoch schedule; docs/reference-behaviour.md,
    "Optimizer and learning-rate schedule").

    Dassl has no such hook: its trainers call update_lr() (or sched.step()) on their last batch. A
    scheduler the trainer already stepped during the epoch is left alone, so a ported Dassl trainer
    and one of ours both get exactly one step per epoch.
    """

    def before_epoch(self):
        self.counts = {name: _step_count(s) for name, s in self.trainer._scheds.items() if s is not None}

    def after_epoch(self):
        scheds = self.trainer._scheds
        unstepped = [n for n, count in self.counts.items() if _step_count(scheds[n]) == count]
        if unstepped:
            self.trainer.update_lr(unstepped)


def _step_count(scheduler):
    """How many times step() ran (torch's LRScheduler counts it; dasslite's warmup wrappers too)."""
    return scheduler._step_count


class BestValHook(HookBase):
    """With TEST.FINAL_MODEL best_val: validate every epoch and save model-best.pth.tar on improvement."""

    def __init__(self):
        self.best_result = -np.inf

    def before_train(self):
        t = self.trainer
        if t.val_loader is None:
            raise ConfigError(
                f'TEST.FINAL_MODEL is best_val but dataset "{t.cfg.DATASET.NAME}" has no val split; '
                f"use TEST.FINAL_MODEL last_step (selecting on the test set would bias the result)"
            )

    def after_epoch(self):
        t = self.trainer
        result = t.test(split="val")
        if result > self.best_result:
            self.best_result = result
            t.save_model(t.epoch, t.output_dir, is_best=True, val_result=result)

    def state_dict(self):
        return {"best_result": float(self.best_result)}

    def load_state_dict(self, state):
        self.best_result = state.get("best_result", -np.inf)


class PeriodicCheckpointer(HookBase):
    """Saves model.pth.tar-<epoch+1> after every epoch, so that a run always resumes from its last epoch.

    TRAIN.CHECKPOINT_FREQ decides which files are kept: every N-th epoch (when > 0) and the last one.
    Any other epoch's file is removed once the next epoch's file (and its pointer) is written.
    """

    def after_epoch(self):
        t = self.trainer
        t.save_model(t.epoch, t.output_dir)
        if t.epoch >= 1 and not self.kept(t.epoch):
            t.remove_model_files(t.epoch, t.output_dir)

    def kept(self, epoch):
        """Whether model.pth.tar-<epoch> stays once later epochs are saved."""
        freq = self.trainer.cfg.TRAIN.CHECKPOINT_FREQ
        return (freq > 0 and epoch % freq == 0) or epoch == self.trainer.max_epoch


class FinalTestHook(HookBase):
    """`Finish training`, then test the last-epoch (or best-val) model and log the elapsed time."""

    def before_train(self):
        self.time_start = time.time()

    def after_train(self):
        t = self.trainer
        logger.info(END_OF_TRAINING)
        if not t.cfg.TEST.NO_TEST:
            if t.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Deploy the model with the best val performance")
                if is_dist():
                    dist.barrier()  # rank 0 may still be writing model-best.pth.tar
                t.load_model(t.output_dir)
            else:
                logger.info("Deploy the last-epoch model")
            t.test()
        logger.info(f"Elapsed: {format_seconds(time.time() - self.time_start)}")


class TensorboardHook(HookBase):
    """Scalars under OUTPUT_DIR/tensorboard when the tensorboard package is installed (optional)."""

    def before_train(self):
        if is_main_process():
            self.trainer.init_writer(os.path.join(self.trainer.output_dir, "tensorboard"))

    def close(self):
        self.trainer.close_writer()
