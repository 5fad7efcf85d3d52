"""PREC values (fp16, fp32, amp, bf16): which one a device can run, how CLIP's weights are stored for it,
and the autocast context for it.

| PREC | CUDA | CPU |
|---|---|---|
| fp32 | fp32 | fp32 |
| fp16 | frozen CLIP stored in fp16 (OpenAI's conversion) | fp32 (needs CUDA) |
| amp | fp32 weights, fp16 autocast, loss scaling | fp32 (needs CUDA) |
| bf16 | fp32 weights, bf16 autocast | frozen CLIP stored in bf16 where the CPU computes bf16 natively, else fp32 |

Learned parameters stay fp32 in every case. On a CPU, bf16 stores the frozen weights in bf16 instead of
autocasting: autocast caches the casts of weights that require grad only, so it would convert every
frozen weight at every op of every step, which made bf16 slower than fp32 (benchmarks/README.md, CPU).
"""

import contextlib
import functools
import logging

import torch

from dasslite.errors import ConfigError
from dasslite.utils.logger import notice_once

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "amp", "bf16")
# CPU flags (as /proc/cpuinfo names them) of instructions that compute bf16 natively: x86's AMX and
# AVX512-BF16, Arm's BF16 extension. Without one, bf16 matrix products are emulated and slower than fp32.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def check_precision(prec, key):
    if prec not in PRECISIONS:
        raise ConfigError(f'{key} must be one of {", ".join(PRECISIONS)}, got "{prec}"')


def resolve_precision(prec, device, key):
    """The precision to run with on `device`: fp16 and amp need CUDA, and bf16 on a CPU needs native bf16;
    otherwise fp32 (with one warning line)."""
    check_precision(prec, key)
    if device.type != "cuda" and prec in ("fp16", "amp"):
        notice_once(logger, f"{key} {prec} needs CUDA; running in fp32 on {device.type}")
        return "fp32"
    if device.type == "cpu" and prec == "bf16" and native_bf16_flag() is None:
        _warn_once(
            f"{key} bf16: this CPU has no native bf16 instructions (none of the flags "
            f"{', '.join(NATIVE_BF16_FLAGS)}), where bf16 runs slower than fp32; running in fp32"
        )
        return "fp32"
    return prec


@functools.cache
def _warn_once(message):
    logger.warning(message)


def native_bf16_flag(flags=None):
    """The first of NATIVE_BF16_FLAGS among `flags` (default: this CPU's), or None."""
    flags = cpu_flags() if flags is None else set(flags)
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


@functools.cache
def cpu_flags():
    """This CPU's feature flags: /proc/cpuinfo's on Linux, else what torch reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):  # x86, Arm
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    supported = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return frozenset({"avx512_bf16"} if supported else ())


def stored_precision(prec, device):
    """The precision CLIP's frozen weights are stored in for a resolved `prec` (see the table above)."""
    if prec == "fp16" or (prec == "bf16" and device.type == "cpu"):
        return prec
    return "fp32"


def describe_precision(prec, device, key):
    """One log line: what runs in which precision, and why."""
    if prec == "fp32":
        return f"Precision ({key} resolved to fp32): CLIP and the learned parameters in fp32"
    stored = stored_precision(prec, device)
    if stored == "bf16":
        why = f"this CPU computes bf16 natively: {native_bf16_flag()}; weights stored in bf16, never re-cast"
    elif stored == "fp16":
        why = "OpenAI's half-precision conversion"
    else:
        why = f"fp32 weights under {'fp16 autocast with loss scaling' if prec == 'amp' else 'bf16 autocast'}"
    computes = "fp16" if prec == "amp" else prec
    return (
        f"Precision ({key} {prec}): CLIP's frozen image and text encoders compute in {computes} ({why}); "
        f"the learned parameters and the loss stay in fp32"
    )


def autocast_for(prec, device):
    if prec == "amp":
        return torch.autocast(device.type, dtype=torch.float16)
    if prec == "bf16" and stored_precision(prec, device) != "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
