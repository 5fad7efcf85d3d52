"""Checkpoint files in the reference layout (SPEC 2.4), written atomically and read safely.

Layout: <dir>/model.pth.tar-<epoch> (or model-best.pth.tar) and <dir>/checkpoint, a text file naming
the last epoch checkpoint written (resume reads it). Files are torch.save'd dicts
{"state_dict", "epoch", "optimizer", "scheduler", "val_result"} plus our "rng_state", "meta", "hooks".
"""

import collections
import logging
import os
import pickle
import re

import torch

from ..utils.io import atomic_write

logger = logging.getLogger(__name__)

BEST_FILE = "model-best.pth.tar"
POINTER_FILE = "checkpoint"


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles a Python object outside the allowlist; it was not loaded."""


def _plain_dict(*args):
    """Stands in for collections.defaultdict when unpickling.

    The reference pickles its CosineAnnealingLR object, and with it the optimizer, whose `state` is a
    defaultdict; torch's weights-only unpickler cannot fill a defaultdict, but can fill a dict.
    """
    return {}


# Exactly what the reference's checkpoints pickle besides tensors and plain containers: the
# scheduler object nested in Dassl's warmup-wrapper state, and the optimizer object it references.
SAFE_GLOBALS = [
    torch.optim.lr_scheduler.CosineAnnealingLR,
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.MultiStepLR,
    torch.optim.SGD,
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.RMSprop,
    torch.optim.RAdam,
    (_plain_dict, "collections.defaultdict"),
    dict,  # the defaultdict's default_factory
    collections.Counter,  # MultiStepLR.milestones
]


def save_checkpoint(state, save_dir, is_best=False, model_name="", remove_module_from_keys=True):
    """Write `state` to save_dir/model.pth.tar-<state["epoch"]> (or model-best.pth.tar, or `model_name`).

    A temp file is renamed over the target, so a crash never leaves a half-written checkpoint. The
    `checkpoint` pointer names the latest epoch file; a best-model save leaves it alone so that a
    resume continues from the latest epoch, not from the best one.
    """
    if remove_module_from_keys:
        state = dict(state, state_dict=strip_module_prefix(state["state_dict"]))
    name = model_name or (BEST_FILE if is_best else f"model.pth.tar-{state['epoch']}")
    path = os.path.join(save_dir, name)
    with atomic_write(path, mode="wb") as f:
        torch.save(state, f)
    logger.info(f"Checkpoint saved to {path}")
    if name != BEST_FILE:
        with atomic_write(os.path.join(save_dir, POINTER_FILE)) as f:
            f.write(name + "\n")
    return path


def strip_module_prefix(state_dict):
    """Drop the "module." prefix that DataParallel / DistributedDataParallel add to keys."""
    return collections.OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def load_checkpoint(path):
    """torch.load with weights_only=True and the allowlist above; never falls back to full unpickling."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: "{path}"')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        match = re.search(r"GLOBAL (\S+)", str(exc))
        blocked = match.group(1) if match else "an object torch's safe loader rejects"
        raise UnsafeCheckpointError(
            f'Refusing to load "{path}": it pickles {blocked}, which is not on the checkpoint allowlist '
            f"(dasslite.engine.checkpoint.SAFE_GLOBALS). Unpickling it fully could run arbitrary code. "
            f"If you trust the file, re-save its tensors with plain torch.save. Loader said: "
            f"{_last_line(str(exc))}"
        ) from exc


def _last_line(text):
    """The informative line of torch's long weights-only message."""
    lines = [line.strip() for line in text.splitlines() if "GLOBAL" in line or "Unpickler error" in line]
    return lines[0] if lines else text.strip().splitlines()[-1]


def read_pointer(model_dir):
    """The checkpoint file named by model_dir/checkpoint, or None when there is none."""
    pointer = os.path.join(model_dir, POINTER_FILE)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    return os.path.join(model_dir, name) if name else None


def list_checkpoints(model_dir):
    if not os.path.isdir(model_dir):
        return []
    return sorted(f for f in os.listdir(model_dir) if f.startswith("model") and ".pth" in f)


def model_file_path(directory, name, epoch=None):
    """directory/name/model.pth.tar-<epoch> (model-best.pth.tar when epoch is None); must exist."""
    model_dir = os.path.join(directory, name)
    path = os.path.join(model_dir, BEST_FILE if epoch is None else f"model.pth.tar-{epoch}")
    if not os.path.isfile(path):
        present = list_checkpoints(model_dir)
        found = f"checkpoint files there: {', '.join(present)}" if present else f'no checkpoint files in "{model_dir}"'
        hint = " (pass --load-epoch N to load model.pth.tar-N)" if epoch is None and present else ""
        raise FileNotFoundError(f'Model not found at "{path}"; {found}{hint}')
    return path


def unwrap(module):
    return module.module if hasattr(module, "module") and isinstance(module.module, torch.nn.Module) else module


def _ignored(key, ignore_keys):
    """An entry ending in "." ignores every key under that prefix."""
    return key in ignore_keys or any(i.endswith(".") and key.startswith(i) for i in ignore_keys)


def load_weights(module, state_dict, path, ignore_keys=(), strict=False, trainer_name=None):
    """Load `state_dict` into `module`, reporting problems by key instead of failing obscurely.

    Shape mismatches are errors listing (key, checkpoint shape, model shape); a checkpoint sharing no
    key with the module is an error suggesting it comes from another trainer. With strict=False,
    other missing / unexpected keys (besides `ignore_keys`) are logged as warnings.
    """
    module = unwrap(module)
    state_dict = {k: v for k, v in strip_module_prefix(state_dict).items() if not _ignored(k, ignore_keys)}
    own = module.state_dict()
    common = [k for k in state_dict if k in own]
    if state_dict and not common:
        origin = f' (it was saved by trainer "{trainer_name}")' if trainer_name else ""
        raise ValueError(
            f'None of the keys in "{path}" match the model{origin}; the checkpoint is probably '
            f"from another trainer or model. Checkpoint keys: {sorted(state_dict)[:10]}; "
            f"model keys: {sorted(own)[:10]}"
        )
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in common
        if hasattr(state_dict[k], "shape") and state_dict[k].shape != own[k].shape
    ]
    if mismatched:
        lines = "\n".join(f"  {k}: checkpoint {c}, model {m}" for k, c, m in mismatched)
        raise ValueError(
            f'Shape mismatch loading "{path}" (was it trained with other settings, e.g. '
            f"another number of classes or context tokens?):\n{lines}"
        )
    missing = [k for k in own if k not in state_dict and not _ignored(k, ignore_keys)]
    unexpected = [k for k in state_dict if k not in own]
    if trainer_name and (missing or unexpected):
        # Our own checkpoints (they name their trainer) hold every learned key: a gap means the file
        # is from another trainer or model, and loading it would leave modules at their random init.
        raise ValueError(
            f'Checkpoint "{path}" was saved by trainer "{trainer_name}" and does not match this '
            f"model: missing keys {missing}, unexpected keys {unexpected}. Evaluate it with "
            f"--trainer {trainer_name} and the settings it was trained with."
        )
    if strict and (missing or unexpected):
        raise KeyError(
            f'Checkpoint "{path}" does not match the model: missing keys {missing}, unexpected keys {unexpected}'
        )
    if missing:
        logger.warning(f"Keys missing from {path} (left as initialised): {missing}")
    if unexpected:
        logger.warning(f"Keys in {path} that the model does not have (ignored): {unexpected}")
    module.load_state_dict(state_dict, strict=False)
