"""Checkpoint files in the reference layout (docs/reference-behaviour.md, "Checkpoint files"), written
atomically and read safely.

Layout: <dir>/model.pth.tar-<epoch> (or model-best.pth.tar) and <dir>/checkpoint, a text file naming
the last epoch checkpoint written (resume reads it). Files are torch.save'd dicts
{"state_dict", "epoch", "optimizer", "scheduler", "val_result"} plus our "rng_state", "meta", "hooks".
"""

import collections
import logging
import os
import pickle
import re
import zipfile

import torch

from ..errors import CheckpointError, UserError, UserFileNotFoundError
from ..utils.io import atomic_write

logger = logging.getLogger(__name__)

BEST_FILE = "model-best.pth.tar"
POINTER_FILE = "checkpoint"


class UnsafeCheckpointError(UserError, pickle.UnpicklingError):
    """A checkpoint pickles a Python object outside the allowlist; it was not loaded."""


class CheckpointKeysError(CheckpointError, KeyError):
    """A checkpoint lacks keys the model has, or has keys it lacks (a KeyError, as before)."""


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
    """torch.load with weights_only=True and the allowlist above; never falls back to full unpickling.

    Returns the checkpoint dict. A missing, empty, truncated, unsafe or non-dict file raises a
    UserError naming the path and the fix.
    """
    if not os.path.isfile(path):
        raise UserFileNotFoundError(f'Checkpoint file not found: "{path}"')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'Checkpoint "{path}" is empty (0 bytes). {_corrupt_fix(path)}')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):
            msg = f'Checkpoint "{path}" is corrupt ({_last_line(str(exc))}). {_corrupt_fix(path)}'
            raise CheckpointError(msg) from exc
        match = re.search(r"GLOBAL (\S+)", str(exc))
        blocked = match.group(1) if match else "an object torch's safe loader rejects"
        raise UnsafeCheckpointError(
            f'Refusing to load "{path}": it pickles {blocked}, which is not on the checkpoint allowlist '
            f"(dasslite.engine.checkpoint.SAFE_GLOBALS). Unpickling it fully could run arbitrary code. "
            f"If you trust the file, re-save its tensors with plain torch.save. Loader said: "
            f"{_last_line(str(exc))}"
        ) from exc
    # junk bytes read as a legacy pickle fail inside the unpickler (a KeyError for an unknown memo entry)
    except (EOFError, RuntimeError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f'Checkpoint "{path}" is truncated or not a torch file ({type(exc).__name__}: '
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}). {_corrupt_fix(path)}"
        ) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f'Checkpoint "{path}" holds a {type(ckpt).__name__}, not a checkpoint dict with a "state_dict" '
            f"key. {_corrupt_fix(path)}"
        )
    return ckpt


def _corrupt_fix(path):
    return (
        f"It was probably cut short by a killed copy or a full disk. Delete it and use another "
        f'model.pth.tar-N from "{os.path.dirname(path) or "."}" (or train again).'
    )


def checked_state_dict(ckpt, path, key="state_dict"):
    """ckpt[key] as a mapping of tensors, refusing one that is missing or holds NaN / inf values."""
    state_dict = ckpt.get(key)
    if not isinstance(state_dict, dict):
        found = f"holds a {type(state_dict).__name__}" if key in ckpt else "is missing"
        raise CheckpointError(
            f'Checkpoint "{path}": key "{key}" {found}; a checkpoint is a dict whose "{key}" maps parameter '
            f"names to tensors (keys found: {sorted(map(str, ckpt))[:10]}). Is it a file of this toolkit or "
            f"of the original CoOp code?"
        )
    check_finite(state_dict, path)
    return state_dict


def check_finite(state_dict, path):
    """Refuse NaN / inf in floating-point tensors: such weights evaluate to chance without a word."""
    bad = [
        k for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise CheckpointError(
            f'Checkpoint "{path}" has NaN or infinite values in {", ".join(bad)}; the run that wrote it '
            f"diverged. Use an earlier model.pth.tar-N, or train again (e.g. with a lower OPTIM.LR or PREC fp32)."
        )


def _last_line(text):
    """The informative line of torch's long weights-only message."""
    lines = [line.strip() for line in text.splitlines() if "GLOBAL" in line or "Unpickler error" in line]
    return lines[0] if lines else text.strip().splitlines()[-1]


def read_pointer(model_dir):
    """The checkpoint file named by model_dir/checkpoint, or None when there is none.

    The pointer may only name a file in its own folder (no path separator, no "..").
    """
    pointer = os.path.join(model_dir, POINTER_FILE)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8", errors="replace") as f:
        name = f.read().strip()
    if not name:  # an empty pointer beside checkpoints: resuming "from scratch" would overwrite them
        if list_checkpoints(model_dir):
            raise CheckpointError(
                f'Checkpoint pointer "{pointer}" is empty, but its folder holds '
                f"{', '.join(list_checkpoints(model_dir))}. Write the name of the one to resume from into it "
                f"(e.g. the last model.pth.tar-N), or delete the folder's checkpoints to train from scratch."
            )
        return None
    if name in (".", "..") or "/" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise CheckpointError(
            f'Checkpoint pointer "{pointer}" names "{name}", which is not a file in its own folder; it must '
            f"hold a bare file name such as model.pth.tar-10. Fix or delete the pointer."
        )
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        raise CheckpointError(
            f'Checkpoint pointer "{pointer}" names "{name}", which does not exist there (files: '
            f"{', '.join(list_checkpoints(model_dir)) or 'none'}). Write the name of an existing "
            f"model.pth.tar-N into it, or delete it to train from scratch."
        )
    return path


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
        raise UserFileNotFoundError(f'Model not found at "{path}"; {found}{hint}')
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
        raise CheckpointError(
            f'None of the keys in "{path}" match the model{origin}; the checkpoint is probably '
            f"from another trainer or model. Checkpoint keys: {sorted(state_dict)[:10]}; "
            f"model keys: {sorted(own)[:10]}"
        )
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in common
        if hasattr(state_dict[k], "shape") and state_dict[k].shape != own[k].shape
    ]
    if mismatched:  # one line: the command prints it as its single `error:` line
        shapes = "; ".join(f"{k}: checkpoint {c}, model {m}" for k, c, m in mismatched[:10])
        origin = f' (saved by trainer "{trainer_name}")' if trainer_name else ""
        raise CheckpointError(
            f'Shape mismatch loading "{path}"{origin}: {shapes}. Was it trained with other settings, e.g. '
            f"another trainer, number of classes or context tokens? Evaluate it with the settings it was trained with."
        )
    missing = [k for k in own if k not in state_dict and not _ignored(k, ignore_keys)]
    unexpected = [k for k in state_dict if k not in own]
    if trainer_name and (missing or unexpected):
        # Our own checkpoints (they name their trainer) hold every learned key: a gap means the file
        # is from another trainer or model, and loading it would leave modules at their random init.
        raise CheckpointError(
            f'Checkpoint "{path}" was saved by trainer "{trainer_name}" and does not match this '
            f"model: missing keys {missing}, unexpected keys {unexpected}. Evaluate it with "
            f"--trainer {trainer_name} and the settings it was trained with."
        )
    if strict and (missing or unexpected):
        raise CheckpointKeysError(
            f'Checkpoint "{path}" does not match the model: missing keys {missing}, unexpected keys {unexpected}'
        )
    if missing:
        logger.warning(f"Keys missing from {path} (left as initialised): {missing}")
    if unexpected:
        logger.warning(f"Keys in {path} that the model does not have (ignored): {unexpected}")
    module.load_state_dict(state_dict, strict=False)


def load_pretrained_weights(module, path, ignore_keys=()):
    """Warm-start `module` from `path` as Dassl's load_pretrained_weights does.

    The file's "state_dict" (or the file itself when it is a plain state dict) is matched to the
    module by key (after dropping a "module." prefix) and shape; matching tensors are loaded, the
    rest is reported as discarded. `ignore_keys` are never loaded (state the module rebuilds itself).
    """
    ckpt = load_checkpoint(path)
    state_dict = checked_state_dict(ckpt, path) if "state_dict" in ckpt else ckpt
    check_finite(state_dict, path)
    module = unwrap(module)
    own = module.state_dict()
    matched, discarded = {}, []
    for k, v in strip_module_prefix(state_dict).items():
        if k in own and k not in ignore_keys and hasattr(v, "shape") and v.shape == own[k].shape:
            matched[k] = v
        else:
            discarded.append(k)
    if not matched:
        raise CheckpointError(
            f'MODEL.INIT_WEIGHTS "{path}" has no tensor whose name and shape match the model '
            f"(file keys: {sorted(state_dict)[:10]}; model keys: {sorted(own)[:10]}); it is from another "
            f"trainer or was trained with other settings (e.g. N_CTX)."
        )
    module.load_state_dict(matched, strict=False)
    logger.info(f'Successfully loaded pretrained weights from "{path}"')
    if discarded:
        logger.warning(f"Layers discarded due to unmatched keys or size: {discarded}")
    return matched
