"""OUTPUT_DIR/run.json: what a run folder needs, besides config.yaml and the checkpoints, to be used alone.

    {"version": 1, "trainer": "CoOp", "dataset": "ImageFolder",
     "classnames": [...],                       # label order: logit i is class classnames[i]
     "backbone": {"kind": "openai" | "file" | "open_clip", "name": MODEL.BACKBONE.NAME, ...},
     "preprocess": {"resize": 224, "crop": [224, 224], "interpolation": "bicubic",
                    "mean": [...], "std": [...], "instance_norm": false},
     "weights": {"model_dir": ".", "epoch": null},
     "plugins": {"trainer": {"file": "/abs/my_method.py"}}}  # or "module" / "entry_point" + "distribution"

`backbone` identifies the CLIP weights: an OpenAI name (with its open_clip model name and the
"openai" tag), an open_clip `model:tag`, or a file in OpenAI's layout by absolute path and the sha256
of its bytes, which loading checks (`resolve_backbone`). `preprocess` is the test-time pipeline of
dasslite/data/transforms.py (resize the smaller edge, centre crop, [0, 1] tensor, normalise).
`weights.model_dir` is where the checkpoints are ("." = the run folder; an eval-only run points to its
--model-dir) and `weights.epoch` the --load-epoch it evaluated (null: the run's final model).
`plugins` says where the run's trainer and dataset come from when a plugin provides them
(coop_toolkit/plugins.py); loading never imports them.
"""

import hashlib
import os

from torchvision import transforms as T

from dasslite.data.transforms import INTERPOLATION_MODES
from dasslite.utils.io import read_json, write_json

from .plugins import run_plugins
from .trainers.clip_backbone import OPENAI_MODELS

RUN_FILE = "run.json"
VERSION = 1


class BackboneMismatchError(ValueError):
    """The backbone file is not the one the run was trained with."""


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def backbone_record(name):
    """The identity of MODEL.BACKBONE.NAME `name` (a file is identified by its bytes)."""
    path = os.path.expanduser(name)
    if os.path.isfile(path):
        return {"kind": "file", "name": name, "path": os.path.abspath(path), "sha256": sha256_of(path)}
    if name in OPENAI_MODELS:
        return {"kind": "openai", "name": name, "open_clip_model": OPENAI_MODELS[name][0], "pretrained": "openai"}
    model, _, tag = name.partition(":")
    record = {"kind": "open_clip", "name": name, "open_clip_model": model, "pretrained": tag}
    if os.path.isfile(os.path.expanduser(tag)):  # open_clip takes a weights file as the tag
        record.update(pretrained=os.path.abspath(os.path.expanduser(tag)), sha256=sha256_of(os.path.expanduser(tag)))
    return record


def preprocess_record(cfg):
    """The test-time pipeline of build_transform(cfg, is_train=False), as data."""
    inp = cfg.INPUT
    if inp.NO_TRANSFORM:
        raise ValueError("INPUT.NO_TRANSFORM is True: the run has no test-time pipeline to record")
    normalize = "normalize" in inp.TRANSFORMS
    return {
        "resize": max(inp.SIZE),
        "crop": list(inp.SIZE),
        "interpolation": inp.INTERPOLATION,
        "mean": list(inp.PIXEL_MEAN) if normalize else None,
        "std": list(inp.PIXEL_STD) if normalize else None,
        "instance_norm": "instance_norm" in inp.TRANSFORMS,
    }


def build_preprocess(record):
    """PIL image -> (3, H, W) float tensor, as the run's test loader made it."""
    steps = [
        T.Resize(record["resize"], interpolation=INTERPOLATION_MODES[record["interpolation"]]),
        T.CenterCrop(record["crop"]),
        T.ToTensor(),
    ]
    if record.get("mean") is not None:
        steps.append(T.Normalize(mean=record["mean"], std=record["std"]))
    if record.get("instance_norm"):
        from dasslite.data.transforms import InstanceNormalization

        steps.append(InstanceNormalization())
    return T.Compose(steps)


def make_run_record(cfg, classnames, model_dir="", load_epoch=None):
    return {
        "version": VERSION,
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "classnames": list(classnames),
        "backbone": backbone_record(cfg.MODEL.BACKBONE.NAME),
        "preprocess": preprocess_record(cfg),
        "weights": {"model_dir": _relative_to(model_dir, cfg.OUTPUT_DIR), "epoch": load_epoch},
        "plugins": run_plugins(cfg),
    }


def write_run_record(trainer, model_dir="", load_epoch=None):
    """Write OUTPUT_DIR/run.json for `trainer` (call on rank 0, before training or evaluating).

    `model_dir` / `load_epoch`: where an eval-only run reads its weights (empty: the run folder).
    """
    cfg = trainer.cfg
    record = make_run_record(cfg, trainer.dm.dataset.classnames, model_dir, load_epoch)
    write_json(record, os.path.join(cfg.OUTPUT_DIR, RUN_FILE))
    return record


def _relative_to(model_dir, run_dir):
    if not model_dir or os.path.abspath(model_dir) == os.path.abspath(run_dir):
        return "."
    return os.path.abspath(model_dir)


def read_run_record(run_dir):
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        if os.path.isfile(os.path.join(run_dir, "config.yaml")):
            raise FileNotFoundError(
                f'"{path}" not found: the run predates run.json. Evaluate it once with train.py (its usual flags '
                f"and --eval-only --model-dir {run_dir} --output-dir NEW_FOLDER) and use NEW_FOLDER."
            )
        raise FileNotFoundError(
            f'"{path}" not found: "{run_dir}" is not a run folder (train.py writes config.yaml and run.json '
            f"into every --output-dir); give the --output-dir of a run."
        )
    record = read_json(path)
    missing = [k for k in ("classnames", "backbone", "preprocess") if k not in record]
    if missing:
        raise ValueError(f'"{path}" lacks the key(s) {", ".join(missing)}; it is not a run record of this toolkit')
    return record


def weights_dir(run_dir, record):
    model_dir = (record.get("weights") or {}).get("model_dir") or "."
    return run_dir if model_dir == "." else model_dir


def resolve_backbone(recorded, override="", learned=True):
    """MODEL.BACKBONE.NAME to load for a run whose recorded backbone is `recorded`.

    `override` (predict.py --backbone) names where the weights are now; for a run that learned
    something (`learned`) a file must have the recorded sha256, since a prompt only fits the weights it
    was trained with. A recorded file that is missing or changed is an error naming both identities.
    A zero-shot run learned nothing, so any backbone may replace its recorded one.
    """
    if override and not learned:
        return override
    if recorded.get("kind") != "file":
        if override and override != recorded.get("name"):
            raise BackboneMismatchError(
                f'The run was trained with backbone "{recorded.get("name")}", not "{override}"; '
                f"its learned prompt only fits the backbone it was trained with."
            )
        return recorded["name"]
    path = os.path.expanduser(override) if override else recorded["path"]
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Backbone file "{path}" (sha256 {recorded["sha256"]}) not found; pass --backbone PATH '
            f"(backbone= in the Python API) with the file's new location."
        )
    digest = sha256_of(path)
    if digest != recorded["sha256"]:
        raise BackboneMismatchError(
            f'Backbone file "{path}" has sha256 {digest}, but the run was trained with "{recorded["path"]}" '
            f"of sha256 {recorded['sha256']}: these are different weights, and the learned prompt only fits "
            f"the recorded ones. Pass --backbone with the recorded file."
        )
    return path
