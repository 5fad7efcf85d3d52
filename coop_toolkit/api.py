"""Use a trained prompt from Python: load a run folder, predict, get features; train with a config.

    import coop_toolkit as ct
    run = ct.load_run("output/my_run")                # config.yaml + run.json + checkpoints
    for p in run.predict(["a.jpg", "more_images/"], topk=3):
        print(p.path, p.topk, p.error)                 # [(class name, probability), ...]; error: unreadable
    for p in run.iter_predict(["huge_folder/"]):       # streamed: memory flat in the number of files
        ...
    logits = run.logits(pil_images_or_tensors)         # (N, n_classes)
    image_features = run.image_features(images)        # L2-normalised (N, embed_dim)
    text_features = run.text_features()                # (n_classes, embed_dim); CoCoOp: per image

    cfg = ct.get_cfg(trainer="CoOp", config_file="configs/trainers/CoOp/vit_b16_ep50.yaml",
                     dataset_config_file="configs/datasets/imagefolder.yaml",
                     opts=["DATASET.ROOT", "my_images", "OUTPUT_DIR", "output/my_run"])
    run = ct.train(cfg)                                # what train.py does; returns the loaded run
    run = ct.train(cfg, overwrite=True)                # start over; resume=True continues a stopped run

The model is built by the trainer's own `build_model()` (any registered trainer) for the recorded
class names (`build_trainer(cfg, classnames=...)`, no dataset folder is read), then its checkpoint is
loaded. Images go through the recorded test-time preprocessing (coop_toolkit/run_record.py), decoded in
threads while the model classifies the previous batch (PIL releases the GIL while it decodes). An image
that cannot be read gives a Prediction with `error` set (its message) and no label; `strict=True`
raises at the first one instead.
"""

import collections
import collections.abc
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import yaml
from PIL import Image
from tqdm import tqdm
from yacs.config import CfgNode as CN

from dasslite.config import merge_from_list_checked
from dasslite.data.data_manager import read_image
from dasslite.engine.build import TRAINER_REGISTRY, build_trainer
from dasslite.engine.checkpoint import list_checkpoints
from dasslite.engine.interrupt import TrainingInterrupted
from dasslite.errors import ConfigError, UserFileNotFoundError

from . import run_record as rr
from .config import merge_run_config
from .datasets.imagefolder import IMG_EXTENSIONS
from .launch import RunPlan, Spelling, launch, report_stop
from .plugins import load_plugins, require_trainer
from .trainers.backbone_config import family_input

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """One image's result: `topk` is [(class name, probability), ...], most probable first.

    An image that could not be read has `error` (why, naming the file) and no label (None, topk []).
    """

    path: str | None
    label: int | None
    classname: str | None
    probability: float | None
    topk: list = field(default_factory=list)
    error: str | None = None

    @property
    def shown_path(self):
        """The path as text that prints and encodes anywhere: bytes that are not UTF-8 shown as \\xNN."""
        return None if self.path is None else printable(self.path)


def printable(path):
    """A path (or a message holding one) with the bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def get_cfg(trainer="", config_file="", dataset_config_file="", opts=(), plugins=()):
    """The unfrozen config train.py would merge from these files, `--trainer` and KEY VALUE `opts`.

    `plugins`: modules or .py files defining trainers / datasets outside the toolkit (train.py --plugin).
    """
    load_plugins(plugins)
    args = SimpleNamespace(dataset_config_file=dataset_config_file, config_file=config_file, opts=list(opts))
    return merge_run_config(args, lambda cfg: cfg.TRAINER.update(NAME=trainer or cfg.TRAINER.NAME))


def train(cfg, overwrite=False, resume=False):
    """Train (or, for a zero-shot trainer, evaluate) as `python train.py` does; returns the loaded Run.

    Writes OUTPUT_DIR/{log.txt, config.yaml, run.json, metrics.json} and the checkpoints. A folder that
    holds a finished run is refused (FinishedRunError, a UserError) unless `overwrite=True`, which
    starts from scratch: the folder's checkpoints and metrics.json are removed first (train.py
    --overwrite). `resume=True` continues the run in OUTPUT_DIR (RESUME when set) from its last saved
    epoch and fails if there is no such folder (train.py --resume); an unfinished run there is continued
    without it too. Ctrl-C or SIGTERM while training (in the main thread) stops at the end of the
    current batch and raises TrainingStopped (a dasslite TrainingInterrupted) naming the epoch saved;
    `train(cfg, resume=True)` continues from it and ends as an uninterrupted run would.
    """
    import coop_toolkit.datasets  # noqa: F401  (registers every dataset)

    if not cfg.OUTPUT_DIR:
        raise ValueError("OUTPUT_DIR is empty; set it (opts=['OUTPUT_DIR', 'output/my_run']) to get a run folder")
    cfg.freeze()
    # an unknown trainer name is not test-only here; launch's name check then refuses it
    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME) if cfg.TRAINER.NAME in TRAINER_REGISTRY else None
    test_only = getattr(trainer_cls, "learns_nothing", False)
    plan = RunPlan(overwrite=overwrite, resume=(cfg.RESUME or cfg.OUTPUT_DIR) if resume else "", eval_only=test_only)
    try:
        trainer = launch(cfg, plan, KEYWORDS)
    except TrainingInterrupted as stop:
        report_stop(logger, stop, RESUME_CALL)
        raise TrainingStopped(stop, cfg.OUTPUT_DIR) from None
    return load_run(cfg.OUTPUT_DIR, device=trainer.device)


# how coop_toolkit/launch.py's errors name train()'s options
KEYWORDS = Spelling(overwrite="overwrite=True", resume="resume=True", output_dir="OUTPUT_DIR")
RESUME_CALL = "coop_toolkit.train(cfg, resume=True)"


class TrainingStopped(TrainingInterrupted):
    """train() stopped by SIGINT / SIGTERM: `saved_epoch` is the epoch `train(cfg, resume=True)` continues from."""

    def __init__(self, stop, output_dir):
        super().__init__(stop.signum, stop.where, stop.saved_epoch)
        self.output_dir = output_dir

    def __str__(self):
        return (
            f'Training in "{self.output_dir}" stopped by {super().__str__()} (last saved: epoch {self.saved_epoch}); '
            f"{RESUME_CALL} continues from there."
        )


def load_run(
    run_dir, load_epoch=None, backbone="", classnames=None, device=None, model_dir="", plugins=(), precision="fp32"
):
    """A Run from a run folder alone (config.yaml, run.json, checkpoints); the dataset is not needed.

    `load_epoch`: model.pth.tar-N to load (default: the model the run reported: model-best.pth.tar
    under TEST.FINAL_MODEL best_val, else the last epoch saved). `backbone`: where the recorded CLIP
    weights are now (a file must have the recorded sha256; a zero-shot run takes any backbone).
    `classnames`: classify into these classes instead (prompts that are not class-specific transfer).
    `model_dir`: the folder of the weights (the model run of an eval-only run) when it is not where
    run.json says (rr.weights_dir: the run folder, or the model run beside it or at its recorded path).
    `plugins`: the modules or .py files of a run trained with a plugin's trainer (predict.py --plugin);
    nothing run.json names is imported without them (coop_toolkit/plugins.py).
    `precision`: fp32 (exact), bf16 or fp16, whatever PREC the run trained with (PRECISION_CHOICES).
    """
    if not os.path.isdir(run_dir):
        what = "is a file, not a folder" if os.path.exists(run_dir) else "not found"
        raise UserFileNotFoundError(f'Run folder "{run_dir}" {what}; give the --output-dir of a train.py run')
    check_classnames(classnames)
    load_plugins(plugins)
    record = rr.read_run_record(run_dir)
    require_trainer(record, run_dir)
    cfg = run_config(run_dir)
    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    learned = not getattr(trainer_cls, "learns_nothing", False)
    cfg.MODEL.BACKBONE.NAME = rr.resolve_backbone(record["backbone"], backbone, learned=learned)
    names = list(classnames) if classnames is not None else record["classnames"]
    trainer = _build(cfg, names, device, precision)
    if learned:
        model_dir = rr.weights_dir(run_dir, record, model_dir)
        epoch = load_epoch if load_epoch is not None else default_epoch(cfg, record, model_dir, trainer)
        rr.check_weights(record, model_dir, epoch)
        trainer.load_model(model_dir, epoch=epoch)
    return Run(trainer, record["preprocess"], names, record=record)


def check_classnames(classnames, where="classnames="):
    if classnames is None:
        return
    if isinstance(classnames, (str, bytes)) or not all(isinstance(n, str) and n.strip() for n in classnames):
        raise ConfigError(f"{where} must be a list of class names (non-empty strings), not {classnames!r:.60}")
    if not classnames:
        raise ConfigError(f"{where} is empty; give at least one class name")
    repeated = sorted({name for name in classnames if list(classnames).count(name) > 1})
    if repeated:
        raise ConfigError(f"{where} repeats {', '.join(repeated[:5])}; each class name must appear once")


def run_config(run_dir):
    """The run's config.yaml over today's defaults. The nodes of trainers not registered here (a plugin
    that was imported at training time) are left out: only the run's own trainer's node matters."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise UserFileNotFoundError(f'"{path}" not found: "{run_dir}" is not a complete run folder')
    cfg = get_cfg()
    try:
        with open(path, encoding="utf-8") as f:
            loaded = CN.load_cfg(f)
    except (UnicodeDecodeError, ValueError, TypeError, AttributeError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())  # yaml's messages span lines: the error is one line
        raise ConfigError(f'"{path}" is not a config file train.py wrote ({detail}); restore it from a copy') from None
    if not isinstance(loaded.get("TRAINER"), CN) or not loaded.TRAINER.get("NAME"):  # empty or cut short
        raise ConfigError(f'"{path}" names no TRAINER.NAME; it is not a whole config train.py wrote: restore it')
    for node in [k for k in loaded.get("TRAINER", {}) if k not in cfg.TRAINER]:
        logger.info(f"{path}: TRAINER.{node} belongs to a trainer that is not registered here; left out")
        del loaded.TRAINER[node]
    pairs = [item for key, value in flat_items(loaded) for item in (key, value)]
    merge_from_list_checked(cfg, pairs, where=f'config.yaml of the run "{path}"')
    return cfg


def flat_items(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, CN):
            yield from flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def zero_shot(
    classnames, backbone, trainer="ZeroshotCLIP", dataset_name="", opts=(), device=None, plugins=(), precision="fp32"
):
    """A zero-shot CLIP Run without a run folder: hand-written prompts ("a photo of a {}." unless
    `dataset_name` has its own template) for `classnames`, on `backbone` (MODEL.BACKBONE.NAME)."""
    check_classnames(classnames)
    cfg = get_cfg(trainer=trainer, plugins=plugins)
    cfg.DATASET.NAME = dataset_name
    cfg.MODEL.BACKBONE.NAME = backbone
    cfg.INPUT.update(family_input(backbone))  # its own preprocessing (open_clip's config of it)
    cfg.INPUT.TRANSFORMS = ["normalize"]
    merge_from_list_checked(cfg, list(opts))
    built = _build(cfg, list(classnames), device, precision)
    return Run(built, rr.preprocess_record(cfg), list(classnames), record=None)


# What a loaded run computes in: fp32 (exact), or bf16 / fp16 on request (on a CPU bf16 needs native bf16
# and fp16 falls back to fp32; coop_toolkit/trainers/precision.py).
PRECISION_CHOICES = ("fp32", "bf16", "fp16")
# What names an image file: bytes too, as os.listdir(bytes) gives names that are not valid UTF-8.
PATH_TYPES = (str, bytes, os.PathLike)


def _build(cfg, classnames, device, precision="fp32"):
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f'precision must be one of {", ".join(PRECISION_CHOICES)}, got "{precision}"')
    node = getattr(TRAINER_REGISTRY.get(cfg.TRAINER.NAME), "config_node", None)
    if node and "PREC" in cfg.TRAINER.get(node, {}):
        cfg.TRAINER[node].PREC = precision
    cfg.USE_CUDA = torch.cuda.is_available() if device is None else _device(device).type == "cuda"
    cfg.freeze()
    with torch.random.fork_rng(devices=[]):  # a prompt's random init is drawn, then overwritten
        trainer = build_trainer(cfg, classnames=classnames)
    trainer.set_model_mode("eval")
    return trainer


def _device(device):
    """torch.device(`device`); a name torch does not know, or CUDA on a machine without it, is a ConfigError."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f'--device (device=) "{device}" is not a device; use cpu, cuda or cuda:N') from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f'--device (device=) "{device}": this machine has no CUDA GPU; use cpu')
    return parsed


def default_epoch(cfg, record, model_dir, trainer):
    """The epoch of the weights the run reported (None = model-best.pth.tar)."""
    recorded = (record.get("weights") or {}).get("epoch")
    if recorded is not None:
        return recorded
    if cfg.TEST.FINAL_MODEL == "best_val":
        return None
    name = trainer.get_model_names()[0]
    files = list_checkpoints(os.path.join(model_dir, name))
    epochs = [int(f.rsplit("-", 1)[1]) for f in files if "tar-" in f and f.rsplit("-", 1)[1].isdigit()]
    return max(epochs) if epochs else None


def find_images(paths):
    """Image files of `paths` (files, and folders searched recursively), folders' files in sorted order."""
    return list(iter_images(paths))


def iter_images(paths):
    """find_images as an iterator (folders are listed as it goes); a missing path fails before the first.

    In folders, hidden files and folders (names starting with "."; macOS's "._name.png") are skipped,
    as training skips them; a file named on its own is taken as it is.
    """
    paths = [os.fsdecode(p) for p in paths]
    for path in paths:
        if not os.path.exists(path):
            raise UserFileNotFoundError(f'"{printable(path)}" is neither an image file nor a folder')
    return _walk(paths)


def _walk(paths):
    for path in paths:
        if not os.path.isdir(path):
            yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            yield from (os.path.join(folder, f) for f in sorted(files) if is_image_name(f))


def is_image_name(name):
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def default_workers():
    """Decoding threads: PIL decodes without the GIL, so a few threads keep one batch ready."""
    return min(8, os.cpu_count() or 1)


class Run:
    """A trained (or zero-shot) model ready to classify images into `classnames`."""

    def __init__(self, trainer, preprocess, classnames, record=None):
        self.trainer = trainer
        self.classnames = list(classnames)
        self.preprocess_record = preprocess
        self.preprocess = rr.build_preprocess(preprocess)
        self.record = record

    @property
    def device(self):
        return self.trainer.device

    def to_batch(self, images):
        """PIL images, paths, (3, H, W) / (B, 3, H, W) preprocessed tensors -> one (B, 3, H, W) tensor."""
        if isinstance(images, torch.Tensor):
            return self._given_tensor(images)
        if isinstance(images, (*PATH_TYPES, Image.Image)):
            images = [images]
        tensors = []
        for image in images:
            if isinstance(image, PATH_TYPES):
                image = read_image(os.fsdecode(image))
            if isinstance(image, Image.Image):
                tensors.append(self._checked(self.preprocess(image.convert("RGB")).unsqueeze(0)))
            elif isinstance(image, torch.Tensor):
                tensors.append(self._given_tensor(image))
            else:
                hint = " (for a numpy array: Image.fromarray(array))" if hasattr(image, "__array__") else ""
                raise ConfigError(
                    f"images must be paths, PIL images or preprocessed tensors, not {type(image).__name__}{hint}"
                )
        return torch.cat(tensors)

    def _checked(self, batch):
        """A (B, 3, H, W) tensor at the run's crop size; any other shape is a ConfigError saying which."""
        crop = tuple(self.preprocess_record["crop"])
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, *crop):
            raise ConfigError(
                f"a preprocessed image tensor must be (3, {crop[0]}, {crop[1]}) or (B, 3, {crop[0]}, {crop[1]}) "
                f"for this run, not {tuple(batch.shape)}; or pass the image as a path or PIL image"
            )
        return batch

    def _given_tensor(self, tensor):
        """A tensor the caller preprocessed, as a batch: checked for shape, and for values only the caller
        can get wrong (images this run read and preprocessed itself are float and finite)."""
        batch = self._checked(tensor.unsqueeze(0) if tensor.dim() == 3 else tensor)
        if not batch.is_floating_point():  # uint8 pixels would be read as values up to 255, not normalised
            raise ConfigError(
                f"a preprocessed image tensor must be floating point, normalised as run.preprocess does, not "
                f"{batch.dtype}; or pass the image as a path or PIL image"
            )
        if not torch.isfinite(batch).all():
            raise ConfigError(
                "a preprocessed image tensor holds NaN or infinite values; it would get a meaningless label"
            )
        return batch

    @torch.no_grad()
    def logits(self, images):
        """(N, n_classes) logits, exactly what the trainer computed in its test loop."""
        return self.trainer.model_inference(self.to_batch(images).to(self.device)).float().cpu()

    def image_features(self, images, normalize=True):
        """Image features (N, embed_dim), L2-normalised unless `normalize` is False."""
        return self.trainer.image_features(self.to_batch(images), normalize=normalize).cpu()

    def text_features(self, image_features=None):
        """L2-normalised class text features (n_classes, embed_dim); for an image-conditioned trainer
        (CoCoOp) pass image features and get (N, n_classes, embed_dim)."""
        if image_features is not None:
            image_features = image_features.to(self.device)
        return self.trainer.class_features(image_features).cpu()

    def logit_scale(self):
        return float(self.trainer.logit_scale())

    def logit_bias(self):
        """None, or the scalar the model adds to every logit (logits = scale * image @ text.T + bias)."""
        bias = self.trainer.logit_bias()
        return None if bias is None else float(bias)

    def predict(self, images, topk=1, batch_size=None, progress=False, strict=False, workers=None):
        """A Prediction per image (paths and folders are expanded to their image files); see iter_predict."""
        results = []
        with tqdm(desc="predict", unit="img", file=sys.stderr, disable=not progress) as bar:
            for prediction in self.iter_predict(images, topk, batch_size, strict, workers):
                results.append(prediction)
                bar.update()
        failed = [p for p in results if p.error]
        if failed:
            logger.warning(f"{len(failed)} of {len(results)} images could not be read: " + failed[0].error)
        return results

    def iter_predict(self, images, topk=1, batch_size=None, strict=False, workers=None):
        """Predictions in the order of `images`, streamed: memory stays flat in the number of images.

        `workers` threads (default: default_workers()) decode and preprocess images ahead of the
        model. An unreadable image yields a Prediction with `error` set; with `strict` its
        ImageReadError is raised. Batches hold readable images only, so the logits of an image do not
        depend on which other files are broken.
        """
        if not isinstance(topk, int) or topk < 1:
            raise ConfigError(f"topk must be a whole number of at least 1 (the labels shown per image); got {topk!r}")
        batch_size = batch_size or self.trainer.cfg.DATALOADER.TEST.BATCH_SIZE
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1; got {batch_size}")
        k = min(topk, len(self.classnames))
        pending, readable = [], 0  # (item, tensor or None, error or None) since the last batch
        pool = ThreadPoolExecutor(max_workers=workers or default_workers())
        try:
            for item, tensor, error in _prefetch(pool, self._prepare, self._items(images), ahead=2 * batch_size):
                if error is not None and strict:
                    raise error
                pending.append((item, tensor, error))
                readable += tensor is not None
                if readable == batch_size:
                    yield from self._classify(pending, k)
                    pending, readable = [], 0
            yield from self._classify(pending, k)
        finally:  # stopped early (strict, or the caller stopped iterating): drop the images read ahead
            pool.shutdown(wait=True, cancel_futures=True)

    def _items(self, images):
        """The images one by one, folders expanded as they are reached; a list's missing path fails first."""
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            images = list(images)
        elif isinstance(images, (*PATH_TYPES, Image.Image, torch.Tensor)):
            images = [images]
        if isinstance(images, (list, tuple)):
            iter_images([i for i in images if isinstance(i, PATH_TYPES)])
        elif not isinstance(images, collections.abc.Iterable):
            raise ConfigError(
                "images must be a path, a PIL image, a tensor, or a list or iterable of them, "
                f"not {type(images).__name__}"
            )
        # Folders expand here; a file path is read (and reported if unreadable) by _prepare, so a
        # dangling link or a file removed meanwhile becomes an error row, not the end of the run.
        return (p for i in images for p in (_walk([os.fsdecode(i)]) if isinstance(i, PATH_TYPES) else [i]))

    def _prepare(self, item):
        """(item, (3, H, W) tensor, None), or (item, None, the ImageReadError) for an unreadable file."""
        try:
            return item, self.to_batch([item])[0], None
        except OSError as error:  # ImageReadError / UserFileNotFoundError: they name the file
            return item, None, error

    def _classify(self, pending, k):
        good = [t for _, t, _ in pending if t is not None]
        top_k = self.logits(torch.stack(good)).softmax(dim=-1).topk(k, dim=-1) if good else None
        rows = zip(top_k.values.tolist(), top_k.indices.tolist()) if good else None
        for item, tensor, error in pending:
            path = os.fsdecode(item) if isinstance(item, PATH_TYPES) else None
            if tensor is None:
                yield Prediction(path, None, None, None, [], printable(str(error)))
                continue
            vals, idxs = next(rows)
            top = [(self.classnames[i], v) for i, v in zip(idxs, vals)]
            yield Prediction(path, idxs[0], top[0][0], vals[0], top)


def _prefetch(pool, fn, items, ahead):
    """fn(item) for each item, computed `ahead` items in advance by `pool`, yielded in order."""
    queue = collections.deque()
    for item in items:
        queue.append(pool.submit(fn, item))
        if len(queue) >= ahead:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()
