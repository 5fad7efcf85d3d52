"""The engine's configuration: Dassl's engine keys and default values (docs/reference-behaviour.md,
"Configuration"), one yacs tree.

Only engine keys live here. Each trainer adds its own `TRAINER.<NAME>` node beside its code
(`extend_cfg`), and no DA/DG/SSL trainer nodes are carried. Every key has a comment saying what it
does; keys kept only so Dassl-era yamls and scripts still load say "unused".

`merge_from_file_checked` / `merge_from_list_checked` replace yacs' `merge_from_*`: same semantics,
but an unknown key names the file and the closest valid key, and a wrong type names the key, the
expected type and the given value.
"""

import difflib
import math
import os

import yaml
from yacs.config import CfgNode as CN

from .errors import ConfigError, ConfigKeyError, UserFileNotFoundError

_C = CN()
_C.VERSION = 1  # config layout version (unused, kept for Dassl yamls)
_C.OUTPUT_DIR = "./output"  # log.txt, checkpoints, metrics.json and tensorboard/ go here
_C.RESUME = ""  # directory to resume training from; "" = OUTPUT_DIR
_C.SEED = -1  # random seed for python, numpy and torch; < 0 = do not seed
_C.USE_CUDA = True  # use a GPU when one is available
_C.VERBOSE = True  # log the dataset summary table and other "Loading ..." lines

# ---------------------------------------------------------------- input / augmentation
_C.INPUT = CN()
_C.INPUT.SIZE = (224, 224)  # (height, width) of the network input
_C.INPUT.INTERPOLATION = "bilinear"  # resize interpolation: bilinear, bicubic or nearest
_C.INPUT.TEST_RESIZE = "shortest"  # test resize: "shortest" (smaller edge, centre crop) or "squash" (whole image)
_C.INPUT.TRANSFORMS = ()  # train augmentations by name, e.g. ("random_resized_crop", "random_flip", "normalize")
_C.INPUT.NO_TRANSFORM = False  # skip every transform (the dataset yields PIL images)
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]  # per-channel mean for "normalize" (ImageNet's by default)
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]  # per-channel std for "normalize"
_C.INPUT.CROP_PADDING = 4  # zero padding of "random_crop"
_C.INPUT.RRCROP_SCALE = (0.08, 1.0)  # area range of "random_resized_crop"
_C.INPUT.CUTOUT_N = 1  # number of holes of "cutout"
_C.INPUT.CUTOUT_LEN = 16  # side of each "cutout" hole, in pixels
_C.INPUT.GN_MEAN = 0.0  # mean of "gaussian_noise"
_C.INPUT.GN_STD = 0.15  # std of "gaussian_noise"
_C.INPUT.RANDAUGMENT_N = 2  # number of ops of "randaugment"
_C.INPUT.RANDAUGMENT_M = 10  # magnitude (0-30) of "randaugment"
_C.INPUT.COLORJITTER_B = 0.4  # brightness of "colorjitter"
_C.INPUT.COLORJITTER_C = 0.4  # contrast of "colorjitter"
_C.INPUT.COLORJITTER_S = 0.4  # saturation of "colorjitter"
_C.INPUT.COLORJITTER_H = 0.1  # hue of "colorjitter"
_C.INPUT.RGS_P = 0.2  # probability of "randomgrayscale"
_C.INPUT.GB_P = 0.5  # probability of "gaussian_blur"
_C.INPUT.GB_K = 21  # kernel size of "gaussian_blur"

# ---------------------------------------------------------------- dataset
_C.DATASET = CN()
_C.DATASET.ROOT = ""  # folder that holds every dataset folder
_C.DATASET.NAME = ""  # registered dataset class, e.g. OxfordPets
_C.DATASET.SOURCE_DOMAINS = ()  # domain adaptation / generalisation only (unused)
_C.DATASET.TARGET_DOMAINS = ()  # domain adaptation / generalisation only (unused)
_C.DATASET.NUM_LABELED = -1  # semi-supervised learning only (unused)
_C.DATASET.NUM_SHOTS = -1  # images per class drawn from train (and min(K, 4) from val); <= 0 = all
_C.DATASET.VAL_PERCENT = 0.1  # semi-supervised learning only (unused)
_C.DATASET.STL10_FOLD = -1  # STL-10 only (unused)
_C.DATASET.CIFAR_C_TYPE = ""  # CIFAR-C only (unused)
_C.DATASET.CIFAR_C_LEVEL = 1  # CIFAR-C only (unused)
_C.DATASET.ALL_AS_UNLABELED = False  # semi-supervised learning only (unused)
_C.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base (first half of the labels) or new (second half)
_C.DATASET.CHECK_DATA = False  # decode every image of the splits once before training (train.py --check-data)

# ---------------------------------------------------------------- data loaders
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4  # loader worker processes (0 = load in the main process)
_C.DATALOADER.K_TRANSFORMS = 1  # apply the train transform K times per image (img, img2, ...)
_C.DATALOADER.RETURN_IMG0 = False  # also return the un-augmented image as "img0"
_C.DATALOADER.TRAIN_X = CN()
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"  # RandomSampler, SequentialSampler or RandomClassSampler
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32  # global batch (split evenly over processes under DDP)
_C.DATALOADER.TRAIN_X.N_DOMAIN = 0  # domain samplers only (unused)
_C.DATALOADER.TRAIN_X.N_INS = 16  # images per class in a RandomClassSampler batch
_C.DATALOADER.TRAIN_U = CN()
_C.DATALOADER.TRAIN_U.SAME_AS_X = True  # the unlabelled loader copies TRAIN_X's settings (unused: no train_u)
_C.DATALOADER.TRAIN_U.SAMPLER = "RandomSampler"  # sampler of the unlabelled loader
_C.DATALOADER.TRAIN_U.BATCH_SIZE = 32  # batch of the unlabelled loader
_C.DATALOADER.TRAIN_U.N_DOMAIN = 0  # domain samplers only (unused)
_C.DATALOADER.TRAIN_U.N_INS = 16  # images per class for RandomClassSampler on train_u
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"  # sampler of the val and test loaders
_C.DATALOADER.TEST.BATCH_SIZE = 32  # batch of the val and test loaders

# ---------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.INIT_WEIGHTS = ""  # optional checkpoint to warm-start the learnable modules from
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = ""  # backbone name, e.g. RN50, ViT-B/16
_C.MODEL.BACKBONE.PRETRAINED = True  # load pretrained backbone weights (unused by CLIP trainers)
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = ""  # classifier head (unused by CLIP trainers)
_C.MODEL.HEAD.HIDDEN_LAYERS = ()  # head MLP widths (unused)
_C.MODEL.HEAD.ACTIVATION = "relu"  # head activation (unused)
_C.MODEL.HEAD.BN = True  # head batch norm (unused)
_C.MODEL.HEAD.DROPOUT = 0.0  # head dropout (unused)

# ---------------------------------------------------------------- optimisation
_C.OPTIM = CN()
_C.OPTIM.NAME = "adam"  # sgd, adam, amsgrad, rmsprop, radam or adamw
_C.OPTIM.LR = 0.0003  # base learning rate (after warmup)
_C.OPTIM.WEIGHT_DECAY = 5e-4  # L2 penalty; CoOp inherits this default (no CoOp yaml sets it)
_C.OPTIM.MOMENTUM = 0.9  # SGD / RMSprop momentum; CoOp inherits this default
_C.OPTIM.SGD_DAMPNING = 0  # SGD dampening (Dassl's spelling)
_C.OPTIM.SGD_NESTEROV = False  # SGD Nesterov momentum
_C.OPTIM.RMSPROP_ALPHA = 0.99  # RMSprop smoothing constant
_C.OPTIM.ADAM_BETA1 = 0.9  # Adam-family beta1
_C.OPTIM.ADAM_BETA2 = 0.999  # Adam-family beta2
_C.OPTIM.ADAM_EPS = 1e-8  # Adam-family eps (torch's default); TCP's yamls set 1e-3 (its fp16 Meta-Net)
_C.OPTIM.STAGED_LR = False  # give layers not in NEW_LAYERS the learning rate LR * BASE_LR_MULT
_C.OPTIM.NEW_LAYERS = ()  # child-module names trained at the full LR when STAGED_LR
_C.OPTIM.BASE_LR_MULT = 0.1  # LR multiplier of the other layers when STAGED_LR
_C.OPTIM.LR_SCHEDULER = "single_step"  # single_step, multi_step or cosine; stepped once per epoch
_C.OPTIM.STEPSIZE = (-1,)  # decay epoch(s) of the step schedulers; -1 = MAX_EPOCH
_C.OPTIM.GAMMA = 0.1  # decay factor of the step schedulers
_C.OPTIM.MAX_EPOCH = 10  # number of training epochs (also the cosine period)
_C.OPTIM.WARMUP_EPOCH = -1  # epochs of warmup before the schedule; <= 0 = no warmup
_C.OPTIM.WARMUP_TYPE = "linear"  # constant (WARMUP_CONS_LR) or linear (WARMUP_MIN_LR -> LR)
_C.OPTIM.WARMUP_CONS_LR = 1e-5  # LR during a constant warmup
_C.OPTIM.WARMUP_MIN_LR = 1e-5  # starting LR of a linear warmup
_C.OPTIM.WARMUP_RECOUNT = True  # the schedule counts epochs from 0 after warmup (else from WARMUP_EPOCH)

# ---------------------------------------------------------------- training loop
_C.TRAIN = CN()
_C.TRAIN.CHECKPOINT_FREQ = 0  # save every N epochs (the last epoch is always saved); 0 = last only
_C.TRAIN.PRINT_FREQ = 10  # log a batch line every N batches (every batch if an epoch has fewer)
_C.TRAIN.COUNT_ITER = "train_x"  # labelled+unlabelled trainers only (unused)

# ---------------------------------------------------------------- evaluation
_C.TEST = CN()
_C.TEST.EVALUATOR = "Classification"  # registered evaluator class
_C.TEST.PER_CLASS_RESULT = False  # also log per-class accuracies and their mean
_C.TEST.COMPUTE_CMAT = False  # save the row-normalised confusion matrix to OUTPUT_DIR/cmat.pt
_C.TEST.NO_TEST = False  # skip the final test after training
_C.TEST.SPLIT = "test"  # split evaluated by test(): test or val
_C.TEST.FINAL_MODEL = "last_step"  # last_step (test the last epoch) or best_val (validate every epoch)

# ---------------------------------------------------------------- trainer
_C.TRAINER = CN()
_C.TRAINER.NAME = ""  # registered trainer class, e.g. CoOp; trainers add TRAINER.<NAME> nodes

# The valid values of the keys that take one of a few words; the code that acts on them imports these.
SUBSAMPLE_CHOICES = ("all", "base", "new")
WARMUP_TYPES = ("constant", "linear")
TEST_RESIZE_MODES = ("shortest", "squash")
CHOICES = {
    "DATASET.SUBSAMPLE_CLASSES": SUBSAMPLE_CHOICES,
    "TEST.FINAL_MODEL": ("last_step", "best_val"),
    "TEST.SPLIT": ("test", "val"),
    "OPTIM.WARMUP_TYPE": WARMUP_TYPES,
    "INPUT.INTERPOLATION": ("bilinear", "bicubic", "nearest"),
    "INPUT.TEST_RESIZE": TEST_RESIZE_MODES,
}


YAML_EXTENSIONS = (".yaml", ".yml")


def get_cfg_default():
    return _C.clone()


def _get(cfg, full_key):
    node = cfg
    for part in full_key.split("."):
        node = node[part]
    return node


def check_cfg_values(cfg):
    """Value checks the engine relies on, run before anything is written; each error names the key,
    the value and the valid ones."""
    for key, choices in CHOICES.items():
        value = _get(cfg, key)
        if value not in choices:
            raise ConfigError(f'{key} must be one of {", ".join(choices)}; got "{value}".')
    for key in (
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        "DATALOADER.TRAIN_U.BATCH_SIZE",
        "DATALOADER.TEST.BATCH_SIZE",
        "TRAIN.PRINT_FREQ",
    ):
        _check(cfg, key, lambda v: v >= 1, "an integer >= 1")
    _check(cfg, "OPTIM.MAX_EPOCH", lambda v: v >= 0, "an integer >= 0")
    _check(cfg, "TRAIN.CHECKPOINT_FREQ", lambda v: v >= 0, "an integer >= 0")
    _check(cfg, "DATALOADER.NUM_WORKERS", lambda v: v >= 0, "an integer >= 0 (0 = load in the main process)")
    _check(cfg, "OPTIM.LR", lambda v: math.isfinite(v) and v > 0, "a positive finite number")
    _check(
        cfg,
        "INPUT.SIZE",
        lambda v: len(v) == 2 and all(isinstance(x, int) and x > 0 for x in v),
        "two positive integers (height, width), e.g. (224, 224)",
    )
    _check(cfg, "INPUT.PIXEL_STD", lambda v: all(x != 0 for x in v), "non-zero in every channel (it divides)")
    if cfg.MODEL.INIT_WEIGHTS and not os.path.isfile(cfg.MODEL.INIT_WEIGHTS):
        raise UserFileNotFoundError(
            f'MODEL.INIT_WEIGHTS: checkpoint file not found: "{cfg.MODEL.INIT_WEIGHTS}"; give the path of a '
            f"model.pth.tar-N file, or set MODEL.INIT_WEIGHTS '' to start from the trainer's initialisation."
        )


def _check(cfg, key, ok, expected):
    value = _get(cfg, key)
    try:
        valid = bool(ok(value))
    except TypeError:
        valid = False
    if not valid:
        raise ConfigError(f"{key} must be {expected}; got {value!r}.")


# ---------------------------------------------------------------- checked merging


def flat_keys(cfg, prefix=""):
    """Every leaf key of `cfg` as a dotted name."""
    keys = []
    for k, v in cfg.items():
        name = prefix + k
        keys.extend(flat_keys(v, name + ".") if isinstance(v, CN) else [name])
    return keys


def _unknown_key_error(full_key, cfg, where):
    close = difflib.get_close_matches(full_key, flat_keys(cfg), n=1, cutoff=0.6)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    return ConfigKeyError(
        f'Unknown config key "{full_key}" in {where}.{hint} '
        f"(A trainer's own keys exist only once that trainer's extend_cfg has run.)"
    )


# Keys that take a bool as well as their default's type. The Dassl-based repositories' yamls write
# `CTX_INIT: True` (their default is False) where this toolkit's default is a string; the trainer
# that owns such a key names it with allow_bool() and reads either.
BOOL_ALSO = set()


def clean_cfg(cfg, trainer):
    """Drop every TRAINER node but NAME and `trainer`'s (upper-cased), as Dassl's clean_cfg does to make
    print(cfg) show only what the run reads."""
    for key in [k for k in cfg.TRAINER if k not in ("NAME", trainer.upper())]:
        cfg.TRAINER.pop(key)


def allow_bool(full_key):
    BOOL_ALSO.add(full_key)


def _coerce(value, original, full_key, where):
    """yacs' type rules (same type; list <-> tuple; None either way) plus int -> float, plus bool <-> str
    for the keys in BOOL_ALSO."""
    if type(value) is type(original) or value is None or original is None:
        return value
    if full_key in BOOL_ALSO and isinstance(value, (bool, str)) and isinstance(original, (bool, str)):
        return value
    if isinstance(original, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(original)(value)
    if isinstance(original, float) and type(value) is int:
        return float(value)
    raise ConfigError(
        f"Wrong type for config key {full_key} in {where}: expected {type(original).__name__} "
        f"(default {original!r}), got {type(value).__name__} {value!r}."
    )


def _set_checked(cfg, full_key, value, where):
    node = cfg
    parts = full_key.split(".")
    for part in parts[:-1]:
        if not isinstance(node, CN) or part not in node:
            raise _unknown_key_error(full_key, cfg, where)
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, CN) or leaf not in node:
        raise _unknown_key_error(full_key, cfg, where)
    if isinstance(node[leaf], CN):
        raise ConfigKeyError(
            f'Config key "{full_key}" in {where} is a group, not a value; set one of its keys '
            f"({', '.join(flat_keys(node[leaf], full_key + '.'))})."
        )
    node[leaf] = _coerce(value, node[leaf], full_key, where)


def _leaves(loaded, prefix=""):
    for k, v in loaded.items():
        if isinstance(v, CN):
            yield from _leaves(v, prefix + k + ".")
        else:
            yield prefix + k, v


def merge_from_file_checked(cfg, path, what="config file"):
    """Merge the yaml at `path` into `cfg`; `what` (e.g. "--config-file") names where it came from."""
    if cfg.is_frozen():
        raise RuntimeError(f'Cannot merge "{path}": the config is frozen')
    where = f'{what} "{path}"'
    for full_key, value in _leaves(load_yaml_cfg(path, what)):
        # literal-eval strings as yacs' merge does: YAML reads 1e-5 as the string "1e-5"
        _set_checked(cfg, full_key, CN._decode_cfg_value(value), where)


def load_yaml_cfg(path, what="config file"):
    """The yaml mapping at `path` as a CfgNode, read with yaml.safe_load.

    Only .yaml / .yml files are read: yacs' own loader imports a .py config file, which runs its code.
    """
    if os.path.splitext(path)[1].lower() not in YAML_EXTENSIONS:
        raise ConfigError(
            f'{what}: "{path}" is not a YAML file; config files must end in .yaml or .yml (other files, '
            f"e.g. Python configs, are refused without being read)."
        )
    if not os.path.isfile(path):
        raise UserFileNotFoundError(f'{what}: config file not found: "{path}"')
    with open(path, encoding="utf-8") as f:
        try:
            loaded = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f'{what}: "{path}" is not valid YAML: {" ".join(str(exc).split())}') from exc
    if loaded is None:  # an empty file sets nothing
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f'{what}: "{path}" must hold a mapping of config keys (e.g. "OPTIM:\\n  LR: 0.002"); '
            f"it holds a {type(loaded).__name__}."
        )
    return CN(loaded)


def merge_from_list_checked(cfg, opts, where="the command-line options"):
    """Merge `KEY VALUE` pairs (strings are literal-evaluated as yacs does)."""
    if len(opts) % 2:
        raise ConfigError(f"Config overrides must be KEY VALUE pairs; got an odd number of items: {list(opts)}")
    if cfg.is_frozen():
        raise RuntimeError("Cannot merge options: the config is frozen")
    for key, raw in zip(opts[0::2], opts[1::2]):
        _set_checked(cfg, key, CN._decode_cfg_value(raw), where)
