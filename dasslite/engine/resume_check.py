"""Whether a folder's saved state may be resumed under the current config.

A run resumes from the checkpoint its folder's `checkpoint` pointers name. Its recorded config (the
checkpoint's "config" text, else the folder's config.yaml) must agree with the current one on every
key that changes what is learned (LEARNING_KEYS, plus the trainer's own TRAINER.<NODE> options and the
keys it names in `learning_keys`, e.g. CoPrompt's TRAINER.W);
OPTIM.MAX_EPOCH may change (with a warning), but not below the epoch already reached.
"""

import os

from yacs.config import CfgNode as CN

from ..config import flat_keys
from ..errors import CheckpointError, ConfigError
from .checkpoint import load_checkpoint, read_pointer

CONFIG_FILE = "config.yaml"

# Exact keys, or prefixes ending in ".", whose value changes what a run learns.
LEARNING_KEYS = (
    "SEED",
    "DATASET.NAME",
    "DATASET.NUM_SHOTS",
    "DATASET.SUBSAMPLE_CLASSES",
    "DATASET.SOURCE_DOMAINS",
    "DATASET.TARGET_DOMAINS",
    "INPUT.",
    "DATALOADER.TRAIN_X.",
    "DATALOADER.K_TRANSFORMS",  # augmented views per training image
    "MODEL.",
    "OPTIM.",
    "TRAINER.NAME",
)
ALLOWED_TO_CHANGE = ("OPTIM.MAX_EPOCH",)


def saved_checkpoint(directory):
    """(path, checkpoint dict) of the first `checkpoint` pointer in directory's model folders, or None."""
    if not os.path.isdir(directory):
        return None
    for name in sorted(os.listdir(directory)):
        sub = os.path.join(directory, name)
        path = read_pointer(sub) if os.path.isdir(sub) else None
        if path is not None:
            return path, load_checkpoint(path)
    return None


def recorded_config(directory, ckpt):
    """(config text, where it came from) of a saved run, or (None, None) when nothing recorded it."""
    if isinstance(ckpt.get("config"), str):
        return ckpt["config"], "the checkpoint"
    path = os.path.join(directory, CONFIG_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    return None, None


def _values(cfg):
    values = {}
    for key in flat_keys(cfg):
        node = cfg
        for part in key.split("."):
            node = node[part]
        values[key] = list(node) if isinstance(node, (list, tuple)) else node
    return values


def learning_key_changes(old_cfg, cfg, trainer_node, extra_keys=()):
    """Keys that change what is learned and differ: [(key, recorded value, current value)]."""
    prefixes = LEARNING_KEYS + ((f"TRAINER.{trainer_node}.",) if trainer_node else ()) + tuple(extra_keys)
    old, new = _values(old_cfg), _values(cfg)
    return [
        (k, old[k], new[k])
        for k in new
        if k in old
        and k not in ALLOWED_TO_CHANGE
        and any(k == p or (p.endswith(".") and k.startswith(p)) for p in prefixes)
        and old[k] != new[k]
    ]


def check_resume(cfg, directory, trainer_node=None, extra_keys=()):
    """Refuse to resume `directory` under `cfg` when it would continue another experiment.

    Returns the warnings to log (the run's log file is not open yet: nothing is written before this check).
    """
    notes = []
    found = saved_checkpoint(directory)
    if found is None:
        return notes
    path, ckpt = found
    text, source = recorded_config(directory, ckpt)
    if text is None:
        notes.append(f'"{path}" records no config; cannot check that resuming it continues the same run')
    else:
        old = CN.load_cfg(text)
        changes = learning_key_changes(old, cfg, trainer_node, extra_keys)
        if changes:
            lines = "\n".join(f"  {k}: recorded {a!r}, now {b!r}" for k, a, b in changes)
            raise ConfigError(
                f'Cannot resume "{directory}": it was trained with other settings ({source}) on keys that '
                f"change what is learned:\n{lines}\nUse the recorded settings, choose another --output-dir, "
                f"or pass --overwrite to start this folder from scratch."
            )
        old_max = old.get("OPTIM", {}).get("MAX_EPOCH")
        if old_max is not None and old_max != cfg.OPTIM.MAX_EPOCH:
            notes.append(
                f"OPTIM.MAX_EPOCH changed from {old_max} to {cfg.OPTIM.MAX_EPOCH}: the resumed LR schedule "
                f"continues where it ended (its state comes from the checkpoint), it is not re-planned."
            )
    epoch = ckpt.get("epoch")
    if isinstance(epoch, int) and epoch > cfg.OPTIM.MAX_EPOCH:
        raise CheckpointError(
            f'Cannot resume "{path}": it is at epoch {epoch}, past OPTIM.MAX_EPOCH {cfg.OPTIM.MAX_EPOCH}. Set '
            f"OPTIM.MAX_EPOCH {epoch} or more, or choose another --output-dir."
        )
    return notes
