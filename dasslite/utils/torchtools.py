"""Dassl's model helpers (`dassl.utils.torchtools`) with Dassl's semantics, on dasslite's safe loader."""

import logging
import os

logger = logging.getLogger(__name__)


def load_pretrained_weights(model, weight_path):
    """Copy into `model` every tensor of the checkpoint whose key (without "module.") and size match.

    The checkpoint may hold {"state_dict": ...} or be the state dict itself; unmatched keys are
    listed and skipped, and a file matching nothing is a warning, as in Dassl.
    """
    from ..engine.checkpoint import load_checkpoint, strip_module_prefix

    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched, discarded = {}, []
    for key, value in strip_module_prefix(state_dict).items():
        if key in model_dict and model_dict[key].size() == value.size():
            matched[key] = value
        else:
            discarded.append(key)
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        logger.warning(f'Cannot load "{weight_path}": no key matches the model (check the key names manually)')
        return
    logger.info(f'Loaded pretrained weights from "{weight_path}"')
    if discarded:
        logger.info(f"Layers discarded due to unmatched keys or size: {discarded}")


def count_num_param(model=None, params=None):
    """Number of parameters of `model`, or of `params` (tensors or param-group dicts)."""
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        return sum(p["params"].numel() if isinstance(p, dict) else p.numel() for p in params)
    raise ValueError("count_num_param: pass a model or params")


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Load the file named by fdir/checkpoint into model (and optimizer / scheduler); returns its epoch."""
    from ..engine.checkpoint import load_checkpoint, read_pointer

    path = read_pointer(fdir)
    if path is None:
        raise FileNotFoundError(f'No "checkpoint" pointer file in "{fdir}"')
    ckpt = load_checkpoint(path)
    model.load_state_dict(ckpt["state_dict"])
    if optimizer is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt["epoch"]


def check_isfile(fpath):
    isfile = os.path.isfile(fpath)
    if not isfile:
        logger.warning(f'No file found at "{fpath}"')
    return isfile


def listdir_nohidden(path, sort=False):
    """Non-hidden entries of `path` (Dassl's default: in the filesystem's order unless sort=True)."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


__all__ = [
    "load_pretrained_weights",
    "count_num_param",
    "resume_from_checkpoint",
    "check_isfile",
    "listdir_nohidden",
]
