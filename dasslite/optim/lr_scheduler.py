"""LR schedulers by name (OPTIM.LR_SCHEDULER) and Dassl's warmup wrappers, rewritten for torch >= 2.7.

The engine steps every scheduler once per epoch, so with CoOp's settings (cosine, one constant
warmup epoch at 1e-5) epoch k runs at 1e-5 for k = 1 and 0.001 * (1 + cos(pi * (k - 2) / T)) after
(docs/reference-behaviour.md, "Optimizer and learning-rate schedule").
"""

import logging

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..config import WARMUP_TYPES
from ..errors import ConfigError
from ..registry import unknown_name_message

logger = logging.getLogger(__name__)

AVAILABLE_LR_SCHEDULERS = ("single_step", "multi_step", "cosine")


class _BaseWarmupScheduler(LRScheduler):
    """Runs its own LR for `warmup_epoch` steps, then delegates every step to `successor`.

    Unlike Dassl's, it passes no `verbose` (removed in torch 2.7) and its state_dict is plain data:
    the successor's state dict is nested, never the successor object itself.
    """

    def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
            self._step_count += 1  # counted like super().step(), so the engine's LR hook sees every step
        else:
            super().step(epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return self.warmup_lr()

    def warmup_lr(self):
        """The LRs of a warm-up step (self.last_epoch < self.warmup_epoch)."""
        raise NotImplementedError

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "successor")}
        state["successor"] = self.successor.state_dict()
        return state

    def load_state_dict(self, state_dict):
        """Also accepts the reference's files, where "successor" is the pickled scheduler object."""
        state = dict(state_dict)
        successor = state.pop("successor")
        if isinstance(successor, LRScheduler):
            successor = successor.state_dict()
        successor = {k: v for k, v in successor.items() if k != "optimizer"}
        self.successor.load_state_dict(successor)
        self.__dict__.update(state)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lr(self):
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, min_lr, last_epoch=-1):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def warmup_lr(self):
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def _single_stepsize(stepsize, max_epoch):
    if isinstance(stepsize, (list, tuple)):
        if len(stepsize) != 1:
            raise ConfigError(
                f"OPTIM.STEPSIZE {tuple(stepsize)}: single_step takes one step size; "
                f"use OPTIM.LR_SCHEDULER multi_step for several milestones"
            )
        stepsize = stepsize[0]
    if not isinstance(stepsize, int):
        raise ConfigError(f"OPTIM.STEPSIZE must be an int for single_step, got {stepsize!r}")
    return max_epoch if stepsize <= 0 else stepsize


def build_lr_scheduler(optimizer, optim_cfg):
    name, max_epoch = optim_cfg.LR_SCHEDULER, optim_cfg.MAX_EPOCH
    if name == "single_step":
        step = _single_stepsize(optim_cfg.STEPSIZE, max_epoch)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=optim_cfg.GAMMA)
    elif name == "multi_step":
        if not isinstance(optim_cfg.STEPSIZE, (list, tuple)):
            raise ConfigError(f"OPTIM.STEPSIZE must be a list of epochs for multi_step, got {optim_cfg.STEPSIZE!r}")
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(optim_cfg.STEPSIZE), gamma=optim_cfg.GAMMA
        )
    elif name == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=float(max_epoch))
    else:
        raise ConfigError(
            unknown_name_message("LR scheduler", name, AVAILABLE_LR_SCHEDULERS, hint="(config key OPTIM.LR_SCHEDULER)")
        )
    if optim_cfg.WARMUP_EPOCH > 0:
        scheduler = _wrap_warmup(optimizer, scheduler, optim_cfg)
    return scheduler


def _wrap_warmup(optimizer, scheduler, optim_cfg):
    if not optim_cfg.WARMUP_RECOUNT:
        scheduler.last_epoch = optim_cfg.WARMUP_EPOCH  # the schedule continues as if it had run the warmup
    kind = optim_cfg.WARMUP_TYPE
    if kind == "constant":
        return ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_CONS_LR)
    if kind == "linear":
        return LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH, optim_cfg.WARMUP_MIN_LR)
    raise ConfigError(unknown_name_message("warmup type", kind, WARMUP_TYPES, hint="(config key OPTIM.WARMUP_TYPE)"))
