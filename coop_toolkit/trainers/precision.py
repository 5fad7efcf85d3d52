"""PREC values (fp16, fp32, amp, bf16): which one a device can run and the autocast context for it."""

import contextlib
import logging

import torch

from dasslite.errors import ConfigError
from dasslite.utils.logger import notice_once

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "amp", "bf16")


def check_precision(prec, key):
    if prec not in PRECISIONS:
        raise ConfigError(f'{key} must be one of {", ".join(PRECISIONS)}, got "{prec}"')


def resolve_precision(prec, device, key):
    """The precision to run with on `device`; fp16 and amp need CUDA and fall back to fp32 elsewhere."""
    check_precision(prec, key)
    if device.type != "cuda" and prec in ("fp16", "amp"):
        notice_once(logger, f"{key} {prec} needs CUDA; running in fp32 on {device.type}")
        return "fp32"
    return prec


def autocast_for(prec, device):
    if prec == "amp":
        return torch.autocast(device.type, dtype=torch.float16)
    if prec == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
