"""OUTPUT_DIR/run.json: what a run folder needs, besides config.yaml and the checkpoints, to be used alone.

    {"version": 1, "trainer": "CoOp", "dataset": "ImageFolder",
     "classnames": [...],                       # label order: logit i is class classnames[i]
     "backbone": {"kind": "openai" | "file" | "open_clip", "name": MODEL.BACKBONE.NAME, ...},
     "preprocess": {"resize": 224, "crop": [224, 224], "interpolation": "bicubic",
                    "mean": [...], "std": [...], "instance_norm": false},
     "weights": {"model_dir": ".", "model_dir_relative": ".", "epoch": null,
                 "sha256": {"prompt_learner": "..."}},  # eval-only runs: the checkpoints evaluated
     "plugins": {"trainer": {"file": "/abs/my_method.py"}}}  # or "module" / "entry_point" + "distribution"

`backbone` identifies the CLIP weights: an OpenAI name (with its open_clip model name and the
"openai" tag), an open_clip `model:tag`, or a file in OpenAI's layout by absolute path and the sha256
of its bytes, which loading checks (`resolve_backbone`). `preprocess` is the test-time pipeline of
dasslite/data/transforms.py (resize the smaller edge, centre crop, [0, 1] tensor, normalise); a
`resize` of [height, width] resizes the whole image to it (INPUT.TEST_RESIZE squash: SigLIP's).
`weights.model_dir` is where the checkpoints are ("." = the run folder; an eval-only run points to its
--model-dir by absolute path, and by `model_dir_relative` to the run folder, so a pair of run folders
moved or copied together still finds it: `weights_dir`) and `weights.epoch` the --load-epoch it
evaluated (null: the run's final model). An eval-only run also records `weights.sha256`, the sha256 of
each model's checkpoint file it evaluated, so that weights found elsewhere (beside the run, at the
recorded path or by --model-dir) are checked to be those (`check_weights`). `plugins` says where the
run's trainer and dataset come from when a plugin provides them (coop_toolkit/plugins.py); loading
never imports them.
"""

import hashlib
import json
import logging
import numbers
import os

from torchvision import transforms as T

from dasslite.data.transforms import INTERPOLATION_MODES
from dasslite.engine.checkpoint import list_checkpoints, model_file_path
from dasslite.errors import CheckpointError, RunFolderError, UserError, UserFileNotFoundError
from dasslite.utils.io import write_json

from .plugins import run_plugins
from .trainers.backbone_config import family_record
from .trainers.clip_backbone import OPENAI_MODELS, SCHEMAS

logger = logging.getLogger(__name__)
RUN_FILE = "run.json"
VERSION = 1


class BackboneMismatchError(UserError, ValueError):
    """The backbone file is not the one the run was trained with."""


class RunRecordError(UserError, ValueError):
    """run.json is not valid JSON or lacks a field, or a field has the wrong type."""


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
    if name.startswith(SCHEMAS):  # local-dir: / hf-hub: name config, weights and tokenizer at once
        return {"kind": "open_clip", "name": name, "open_clip_model": name, "pretrained": None}
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
        "resize": list(inp.SIZE) if inp.TEST_RESIZE == "squash" else max(inp.SIZE),
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


def make_run_record(cfg, classnames, model_dir="", load_epoch=None, checkpoint_sha256=None):
    record = {
        "version": VERSION,
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "classnames": list(classnames),
        "backbone": backbone_record(cfg.MODEL.BACKBONE.NAME),
        "family": family_record(cfg.MODEL.BACKBONE.NAME),
        "preprocess": preprocess_record(cfg),
        "weights": {
            "model_dir": _relative_to(model_dir, cfg.OUTPUT_DIR),
            "model_dir_relative": os.path.relpath(os.path.abspath(model_dir or cfg.OUTPUT_DIR), cfg.OUTPUT_DIR),
            "epoch": load_epoch,
        },
        "plugins": run_plugins(cfg),
    }
    if checkpoint_sha256:
        record["weights"]["sha256"] = checkpoint_sha256
    return record


def write_run_record(trainer, model_dir="", load_epoch=None):
    """Write OUTPUT_DIR/run.json for `trainer` (call on rank 0, before training or evaluating).

    `model_dir` / `load_epoch`: where an eval-only run reads its weights (empty: the run folder).
    """
    cfg = trainer.cfg
    digests = None
    if model_dir:  # the files evaluated: load_run checks it reads these same weights wherever it finds them
        digests = {name: sha256_of(model_file_path(model_dir, name, load_epoch)) for name in trainer.get_model_names()}
    record = make_run_record(cfg, trainer.dm.dataset.classnames, model_dir, load_epoch, digests)
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
            raise UserFileNotFoundError(
                f'"{path}" not found: the run predates run.json. Evaluate it once with train.py (its usual flags '
                f"and --eval-only --model-dir {run_dir} --output-dir NEW_FOLDER) and use NEW_FOLDER."
            )
        raise UserFileNotFoundError(
            f'"{path}" not found: "{run_dir}" is not a run folder (train.py writes config.yaml and run.json '
            f"into every --output-dir); give the --output-dir of a run."
        )
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunRecordError(
            f'"{path}" is not valid JSON ({e}); train.py writes it: restore it from a copy of the run folder'
        ) from None
    check_run_record(record, path)
    return record


def _is_number_list(value, length=None):
    ok = isinstance(value, list) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    return ok and (length is None or len(value) == length)


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# field -> (check, what it must be); a field that is absent is reported as missing
RECORD_FIELDS = {
    "classnames": (
        lambda v: isinstance(v, list) and v and all(isinstance(n, str) and n for n in v) and len(set(v)) == len(v),
        "a non-empty list of distinct class names (strings)",
    ),
    "backbone": (
        lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("name"), str)
            and (v.get("kind") != "file" or all(isinstance(v.get(k), str) for k in ("path", "sha256")))
        ),
        'an object with a "name" (and, for a file, its "path" and "sha256")',
    ),
    "preprocess": (lambda v: isinstance(v, dict), "an object (resize, crop, interpolation, mean, std)"),
    "preprocess.resize": (
        lambda v: _is_size(v) or (_is_number_list(v, 2) and all(_is_size(n) for n in v)),
        "a positive integer (the smaller edge) or [height, width] (the whole image)",
    ),
    "preprocess.crop": (
        lambda v: _is_number_list(v, 2) and all(_is_size(n) for n in v),
        "[height, width] (positive integers)",
    ),
    "preprocess.interpolation": (lambda v: v in INTERPOLATION_MODES, " or ".join(INTERPOLATION_MODES)),
    "preprocess.mean": (lambda v: v is None or _is_number_list(v, 3), "null or 3 numbers"),
    "preprocess.std": (
        lambda v: v is None or (_is_number_list(v, 3) and all(n > 0 for n in v)),
        "null or 3 numbers > 0",
    ),
}
OPTIONAL_FIELDS = {
    "weights": (lambda v: v is None or isinstance(v, dict), "an object"),
    "weights.model_dir": (lambda v: isinstance(v, str), "a folder path"),
    "weights.model_dir_relative": (lambda v: isinstance(v, str), "a folder path"),
    "weights.epoch": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "null or an epoch"),
    "weights.sha256": (
        lambda v: isinstance(v, dict) and all(isinstance(h, str) and len(h) == 64 for h in v.values()),
        "an object of model name: sha256 (64 hex digits)",
    ),
}


MISSING = object()


def _field(record, key):
    value = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def check_run_record(record, path):
    """Every field load_run reads, with the type it needs; one RunRecordError lists what is wrong."""
    if not isinstance(record, dict):
        raise RunRecordError(f'"{path}" holds {type(record).__name__}, not a run record (an object)')
    problems = []
    for fields, required in ((RECORD_FIELDS, True), (OPTIONAL_FIELDS, False)):
        for key, (check, expected) in fields.items():
            value = _field(record, key)
            if value is MISSING:
                problems += [f'"{key}" is missing'] if required else []
            elif not check(value):
                problems.append(f'"{key}" must be {expected}, not {json.dumps(value)[:60]}')
    if problems:
        raise RunRecordError(
            f'"{path}" is not a valid run record: {"; ".join(problems)}. train.py writes it: restore it from '
            f"a copy of the run folder, or evaluate the run again."
        )


def weights_dir(run_dir, record, model_dir=""):
    """The folder holding the checkpoints of the run in `run_dir` (`model_dir`: the user's override).

    An eval-only run records its model run by absolute path and relative to itself; the relative one
    wins when it exists, so run folders moved or copied together use their own copies. When both exist
    and hold different checkpoints, nothing is guessed: the error asks for `model_dir`.
    """
    if model_dir:
        if not os.path.isdir(model_dir):
            raise UserFileNotFoundError(f'--model-dir "{model_dir}" (model_dir=): no such folder')
        return model_dir
    weights = record.get("weights") or {}
    recorded = weights.get("model_dir") or "."
    if recorded == ".":
        return run_dir
    relative = weights.get("model_dir_relative")
    beside = os.path.normpath(os.path.join(run_dir, relative)) if relative else None
    here = [p for p in (beside, recorded) if p and os.path.isdir(p)]
    if not here:
        where = f'"{recorded}"' + (f' or, relative to the run, "{beside}"' if beside else "")
        raise UserFileNotFoundError(
            f'"{run_dir}" is an evaluation of the model run at {where}, which is not there; copy that run '
            f"folder back, or pass --model-dir (model_dir= in the Python API) with where it is now."
        )
    if len(here) == 2 and not os.path.samefile(*here) and _checkpoints_digest(beside) != _checkpoints_digest(recorded):
        raise RunFolderError(
            f'"{run_dir}" is an evaluation of the model run "{recorded}" (relative to the run: "{beside}"); both '
            f"folders exist and hold different checkpoints. Pass --model-dir (model_dir=) with the one to use."
        )
    if beside and here[0] != beside:
        logger.warning(f'"{run_dir}": no model run at "{beside}" beside it; reading the recorded "{recorded}"')
    return here[0]


def check_weights(record, model_dir, epoch):
    """The checkpoints of `model_dir` an eval-only run records (weights.sha256) are the ones it evaluated.

    Only when `epoch` is the recorded one (another --load-epoch is another file); a run.json without
    hashes (older runs) is not checked.
    """
    weights = record.get("weights") or {}
    digests = weights.get("sha256")
    if not digests or epoch != weights.get("epoch"):
        return
    for name, expected in digests.items():
        path = model_file_path(model_dir, name, epoch)
        digest = sha256_of(path)
        if digest != expected:
            raise CheckpointError(
                f'"{path}" has sha256 {digest}, but the run evaluated a file of sha256 {expected}: these are '
                f"other weights (retrained or replaced). Pass --model-dir (model_dir= in the Python API) with "
                f"the model run it evaluated, or evaluate this model again with train.py --eval-only."
            )


def _checkpoints_digest(model_dir):
    """sha256 over the names and bytes of every checkpoint in model_dir's model folders."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        folder = os.path.join(model_dir, name)
        for checkpoint in list_checkpoints(folder):
            digest.update(f"{name}/{checkpoint}:{sha256_of(os.path.join(folder, checkpoint))}".encode())
    return digest.hexdigest()


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
        raise UserFileNotFoundError(
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
