"""Tip-Adapter and Tip-Adapter-F (Zhang et al., ECCV 2022): a cache model built from the few-shot features.

Facts from the authors' code (read in gaopengcuhk/Tip-Adapter, main.py, utils.py, configs/*.yaml @d0e2d6f):
- the cache: AUGMENT_EPOCH (10) passes over the few-shot training set, each with fresh random
  augmentation, in the same order; the raw image features are averaged over the passes, then
  L2-normalised: the keys (N*K, D). The values are the one-hot labels (N*K, C);
- logits = 100 * f @ W_clip + alpha * exp(-beta * (1 - f @ keys.T)) @ values, f the normalised image
  features and W_clip the hand-written class features (ImageNet: 7-template ensemble);
- alpha and beta are searched on the validation split over a grid of SEARCH_STEP points up to
  SEARCH_SCALE (beta first); the first strict best top-1 wins;
- Tip-Adapter-F trains the keys as the weight of a bias-free Linear (initialised from them) for
  TRAIN_EPOCH epochs, batch 256, AdamW(LR, eps 1e-4), cosine stepped every iteration, alpha and beta at
  INIT_ALPHA / INIT_BETA; then searches alpha and beta again.

Their selection on the test set: their Tip-Adapter-F keeps the epoch of highest TEST accuracy and prints
the higher of that and the post-search test accuracy; their ImageNet script also searches alpha/beta on
the test set. Here the epoch is chosen on the validation split; TRAINER.TIP_ADAPTER.SELECT_ON_TEST True
does what they do (to reproduce their published numbers) and says so in the log.

The cache is class-specific: a class not in the training set has no cache entry, so these trainers are
not run base-to-new (a class list other than the training one would be classified by the zero-shot
part alone). Their logits are not linear in the image features, so `features_give_logits` is False
(class_features() is the zero-shot part) and export.py refuses them.
"""

import copy
import logging
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.data.data_manager import build_data_loader
from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.engine.checkpoint import checked_state_dict, load_checkpoint, model_file_path
from dasslite.engine.hooks import HookBase
from dasslite.errors import CheckpointError

from ..method_card import MethodCard, Published, fewshot_rows
from .clip_backbone import image_dtype
from .handwritten import handwritten_class_features
from .learner import LearnerTrainer, encode_images
from .precision import autocast_for
from .templates import IMAGENET_TEMPLATES_SELECT, template_for

logger = logging.getLogger(__name__)
CLIP_SCALE = 100.0  # the authors' fixed scale of the zero-shot part

# RN50, 16/8/4/2/1 shots, one seed (read in gaopengcuhk/Tip-Adapter/exp.log@30d2598; their README says
# these are the paper's Fig. 4-5 numbers). Tip-Adapter-F's were selected on the test set (see above).
EXP_LOG = "Tip-Adapter repository exp.log (RN50, seed 1; README: the paper's Fig. 4-5); Average computed here"
NO_EXPORT = (
    "adds a cache term that is not linear in the image features (alpha * exp(-beta * (1 - f @ keys.T)) @ values), "
    "so no exported classifier head could reproduce its logits"
)
TIP_PUBLISHED = Published(
    "Tip-Adapter",
    fewshot={
        "RN50": fewshot_rows(
            {
                "ImageNet": (62.01, 61.45, 60.98, 60.96, 60.70),
                "SUN397": (66.85, 65.62, 64.15, 62.70, 61.30),
                "OxfordPets": (88.14, 87.03, 86.45, 87.03, 86.10),
                "EuroSAT": (70.54, 67.95, 65.32, 61.68, 54.38),
                "Caltech101": (90.18, 89.83, 89.39, 88.44, 87.18),
                "DTD": (60.93, 58.63, 53.96, 49.47, 46.22),
                "FGVCAircraft": (29.76, 25.59, 22.41, 21.21, 19.05),
                "Food101": (77.83, 77.76, 77.54, 77.52, 77.42),
                "Flowers102": (89.89, 87.98, 83.80, 79.13, 73.12),
                "UCF101": (70.58, 68.68, 66.46, 64.74, 62.60),
                "StanfordCars": (66.77, 62.93, 61.45, 57.93, 57.54),
            }
        )
    },
    fewshot_source=EXP_LOG,
)
TIP_F_PUBLISHED = Published(
    "Tip-Adapter-F",
    fewshot={
        "RN50": fewshot_rows(
            {
                "ImageNet": (65.51, 64.00, 62.52, 61.69, 61.13),
                "SUN397": (71.47, 68.87, 66.21, 63.64, 62.50),
                "OxfordPets": (89.70, 88.09, 87.54, 87.03, 87.00),
                "EuroSAT": (84.54, 77.93, 74.12, 66.15, 59.53),
                "Caltech101": (92.86, 91.44, 90.56, 89.74, 89.33),
                "DTD": (66.55, 62.71, 57.39, 53.72, 49.65),
                "FGVCAircraft": (35.55, 30.21, 25.80, 23.19, 20.22),
                "Food101": (79.43, 78.64, 78.24, 77.81, 77.51),
                "Flowers102": (94.80, 91.51, 88.83, 82.30, 79.98),
                "UCF101": (78.03, 74.25, 70.55, 66.43, 64.87),
                "StanfordCars": (75.74, 69.25, 64.57, 61.50, 58.86),
            }
        )
    },
    fewshot_source=EXP_LOG + "; epochs selected on the test set by the authors (SELECT_ON_TEST)",
)


def tip_logits(features, text, affinity, values, alpha, beta):
    """100 f W + alpha * exp(-(beta - beta * A)) @ values, as the authors write the cache term."""
    cache = (-1 * (beta - beta * affinity)).exp() @ values
    return CLIP_SCALE * features @ text.t() + alpha * cache


def search_grid(scale, steps):
    """The authors' grid: steps points from 0.1 towards scale (scale itself excluded)."""
    return [0.1 + i * (scale - 0.1) / steps for i in range(steps)]


def search_hp(features, labels, text, keys, values, opts):
    """(beta, alpha, accuracy) of the best grid point, beta in the outer loop (their order and tie rule)."""
    affinity = features @ keys.t()
    zero_shot = CLIP_SCALE * features @ text.t()
    best = (opts.INIT_BETA, opts.INIT_ALPHA, -1.0)
    for beta in search_grid(opts.SEARCH_SCALE[0], opts.SEARCH_STEP[0]):
        cache = (-1 * (beta - beta * affinity)).exp() @ values
        for alpha in search_grid(opts.SEARCH_SCALE[1], opts.SEARCH_STEP[1]):
            acc = accuracy(zero_shot + alpha * cache, labels)
            if acc > best[2]:
                best = (beta, alpha, acc)
    return best


def accuracy(logits, labels):
    return 100.0 * (logits.argmax(dim=1) == labels).float().mean().item()


class TipCache(nn.Module):
    """The cache: keys as the weight of `adapter` (N*K, D), the one-hot `values` (N*K, C), alpha, beta."""

    def __init__(self, width, num_classes, size=0):
        super().__init__()
        self.adapter = nn.Linear(width, 1, bias=False)  # its authors' name; sized by set_cache
        self.register_buffer("values", torch.zeros(0, num_classes))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.register_buffer("beta", torch.tensor(1.0))
        self.set_cache(torch.zeros(size, width), torch.zeros(size, num_classes))

    def set_cache(self, keys, values):
        device = self.values.device
        self.adapter.weight = nn.Parameter(keys.float().to(device), requires_grad=self.adapter.weight.requires_grad)
        self.values = values.float().to(device)


class TipAdapterCLIP(nn.Module):
    def __init__(self, clip_model, text_features, num_classes):
        super().__init__()
        self.image_encoder = clip_model.visual
        self.register_buffer("text_features", text_features, persistent=False)
        self.cache = TipCache(text_features.shape[1], num_classes)

    def encode(self, image, normalize=True):
        return encode_images(self.image_encoder, image, image_dtype(self.image_encoder), normalize)

    def logits_of_features(self, features, alpha=None, beta=None):
        cache = self.cache
        alpha = cache.alpha if alpha is None else alpha
        beta = cache.beta if beta is None else beta
        return tip_logits(features, self.text_features, cache.adapter(features), cache.values, alpha, beta)

    def forward(self, image):
        return self.logits_of_features(self.encode(image))


@torch.no_grad()
def features_of(encode, loader, device, prec, normalize=True):
    """(features, labels) of a whole loader."""
    features, labels = [], []
    for batch in loader:
        with autocast_for(prec, device):
            features.append(encode(batch["img"].to(device), normalize=normalize).float())
        labels.append(batch["label"].to(device))
    return torch.cat(features), torch.cat(labels)


def tip_node():
    node = CN()
    node.PREC = "fp16"  # fp16, fp32, amp or bf16; the authors' CLIP runs in fp16
    node.INIT_ALPHA = 1.0  # alpha (weight of the cache) before the search and while training (init_alpha)
    node.INIT_BETA = 1.0  # beta (sharpness of the affinities) before the search and while training (init_beta)
    node.SEARCH_HP = True  # search alpha and beta on the validation split (search_hp)
    node.SEARCH_SCALE = [7.0, 3.0]  # upper ends of the beta and alpha grids (search_scale)
    node.SEARCH_STEP = [200, 20]  # grid points for beta and alpha (search_step)
    node.AUGMENT_EPOCH = 10  # augmented passes averaged into the cache keys (augment_epoch)
    node.LR = 0.001  # Tip-Adapter-F: AdamW learning rate (lr); OPTIM.* is not read
    node.TRAIN_EPOCH = 20  # Tip-Adapter-F: epochs of training the keys (train_epoch); OPTIM.MAX_EPOCH is not read
    node.BATCH_SIZE = 256  # the authors' cache and Tip-Adapter-F batch (hard-coded in their main.py)
    # Tip-Adapter-F: pick the epoch on the TEST set and report max(that accuracy, post-search test
    # accuracy), as the authors' code does; only to reproduce their published numbers
    node.SELECT_ON_TEST = False
    return node


# One augmented pass for the cache and a small grid (the registry-wide checks' short runs: MethodCard)
SHORT_CACHE = ("TRAINER.TIP_ADAPTER.AUGMENT_EPOCH", "1", "TRAINER.TIP_ADAPTER.SEARCH_STEP", "[4, 2]")


@TRAINER_REGISTRY.register(name="Tip_Adapter")
class TipAdapter(LearnerTrainer):
    """Tip-Adapter, training-free: build the cache, search alpha and beta on val, test."""

    config_node = "TIP_ADAPTER"
    model_name = "tip_adapter"
    card = MethodCard(
        reference_config="configs/trainers/Tip_Adapter/vit_b16.yaml",
        short_run=SHORT_CACHE,
        published=(TIP_PUBLISHED,),
        export=None,
        no_export_reason=NO_EXPORT,
    )
    features_give_logits = False  # the cache term is not linear in the image features
    learns_by_gradient = False  # the cache is built from the few-shot features; Tip-Adapter-F steps it
    frozen_image_encoder = False  # its image features are open_clip's, but a head over them misses the cache term
    train_epochs = 0

    @classmethod
    def add_config(cls, cfg):
        if "TIP_ADAPTER" not in cfg.TRAINER:
            cfg.TRAINER.TIP_ADAPTER = tip_node()

    def build_custom_clip(self, classnames, clip_model):
        name = self.cfg.DATASET.NAME
        templates = list(IMAGENET_TEMPLATES_SELECT) if name == "ImageNet" else [template_for(name)]
        text = handwritten_class_features(clip_model, classnames, templates, self.prec)
        return TipAdapterCLIP(clip_model, text, len(classnames))

    def learned_parameters(self):
        return {}

    def saved_module(self):
        return self.model.cache

    def build_model(self):
        clip_model = self.load_frozen_clip()
        self.model = self.build_custom_clip(self.dm.dataset.classnames, clip_model)
        self.freeze_all_but_learned()
        self.model.to(self.device)
        self.max_epoch = self.train_epochs
        if getattr(self, "train_loader_x", None) is not None:
            self.build_cache()
        else:  # built from a class list: one entry per class, its text feature, until a checkpoint is loaded
            text = self.model.text_features
            self.model.cache.set_cache(text, torch.eye(text.shape[0], device=text.device))
        self.optim, self.sched, self.scaler = self.build_optimizer()
        self.register_model(self.model_name, self.model.cache, self.optim, self.sched)
        self.train_model = self.model

    def build_optimizer(self):
        return None, None, None

    def ordered_train_loader(self, shuffle=False):
        """The few-shot training set with the training augmentation, every image (no drop_last)."""
        sampler = "RandomSampler" if shuffle else "SequentialSampler"
        batch = self.opts.BATCH_SIZE
        return build_data_loader(
            self.cfg, sampler, self.dm.dataset.train_x, batch, tfm=self.dm.tfm_train, is_train=False, split="train_x"
        )

    def build_cache(self):
        """Keys: the raw features averaged over AUGMENT_EPOCH augmented passes, then normalised."""
        loader = self.ordered_train_loader()
        views, labels = [], None
        for i in range(self.opts.AUGMENT_EPOCH):
            logger.info(f"Augment epoch {i + 1}/{self.opts.AUGMENT_EPOCH} of the cache")
            features, pass_labels = features_of(self.model.encode, loader, self.device, self.prec, normalize=False)
            views.append(features)
            labels = pass_labels if labels is None else labels
        keys = torch.stack(views).mean(dim=0)
        keys = keys / keys.norm(dim=-1, keepdim=True)
        self.model.cache.set_cache(keys, F.one_hot(labels, self.model.text_features.shape[0]).float())
        self.model.cache.alpha.fill_(self.opts.INIT_ALPHA)
        self.model.cache.beta.fill_(self.opts.INIT_BETA)

    def split_features(self, split):
        loader = self.val_loader if split == "val" else self.test_loader
        return features_of(self.model.encode, loader, self.device, self.prec)

    def search(self):
        """Set alpha and beta to the grid's best on the validation split (no val split: keep INIT_*)."""
        if not self.opts.SEARCH_HP or self.val_loader is None:
            logger.info("No search of alpha and beta (SEARCH_HP False or no val split): INIT_ALPHA / INIT_BETA")
            return
        features, labels = self.split_features("val")
        cache = self.model.cache
        with torch.no_grad():
            beta, alpha, acc = search_hp(
                features, labels, self.model.text_features, cache.adapter.weight, cache.values, self.opts
            )
        logger.info(
            f"Best alpha and beta on the val split: alpha {alpha:.2f}, beta {beta:.2f}, val accuracy {acc:.2f}%"
        )
        cache.alpha.fill_(alpha)
        cache.beta.fill_(beta)

    def after_train(self):
        self.finish_cache()
        self.search()
        self.save_model(self.max_epoch - 1, self.output_dir)
        super().after_train()

    def finish_cache(self):
        """Tip-Adapter-F puts its chosen epoch's keys back here."""

    def load_model(self, directory, epoch=None):
        """The engine's checkpoint (the cache resized to the file's), or the authors' cache folder."""
        if directory and authors_files(directory, self.cfg.DATASET.NUM_SHOTS):
            return self.load_authors_cache(directory)
        if directory:
            state = checked_state_dict(load_checkpoint(model_file_path(directory, self.model_name, epoch)), directory)
            if "adapter.weight" in state and "values" in state:
                self.check_classes(state["values"], directory)
                self.model.cache.set_cache(state["adapter.weight"], state["values"])
        return super().load_model(directory, epoch)

    def check_classes(self, values, where):
        n_cls = self.model.text_features.shape[0]
        if values.shape[1] != n_cls:
            raise CheckpointError(
                f'The cache in "{where}" holds {values.shape[1]} classes, this run has {n_cls}: a Tip-Adapter '
                f"cache is class-specific and classifies only the classes it was built on (no base-to-new)"
            )

    def load_authors_cache(self, directory):
        """keys_<K>shots.pt ([D, N*K]) and values_<K>shots.pt, and best_F_<K>shots.pt (Tip-Adapter-F's
        keys, a bare [N*K, D] tensor) if there; then alpha and beta are searched on val."""
        files = authors_files(directory, self.cfg.DATASET.NUM_SHOTS)
        cache = self.model.cache
        keys = cache.adapter.weight.detach()
        if "keys" in files:
            keys = load_tensor(files["keys"]).t()
        values = load_tensor(files["values"]) if "values" in files else cache.values
        if "best_F" in files:
            keys = load_tensor(files["best_F"])
        self.check_classes(values, directory)
        if keys.shape[0] != values.shape[0]:
            raise CheckpointError(
                f'The cache in "{directory}" does not fit: keys {tuple(keys.shape)}, values {tuple(values.shape)} '
                f"for {self.model.text_features.shape[0]} classes (keys_/values_<shots>shots.pt of this "
                f"DATASET.NUM_SHOTS are needed)"
            )
        cache.set_cache(keys, values)
        cache.alpha.fill_(self.opts.INIT_ALPHA)
        cache.beta.fill_(self.opts.INIT_BETA)
        logger.info(f"Loaded the authors' cache from {sorted(files.values())}")
        if self.val_loader is not None:
            self.search()
        return None

    def forward_backward(self, batch):
        if not self.learned_parameters():
            raise RuntimeError(f"{type(self).__name__} trains nothing (its cache is built): run Tip_Adapter_F to train")
        return super().forward_backward(batch)

    # The features protocol (coop_toolkit/trainers/learner.py): the zero-shot part only.
    def model_inference(self, image):
        with torch.no_grad(), autocast_for(self.prec, self.device):
            return self.model(image).float()

    def class_features(self, image_features=None):
        return self.model.text_features

    def logit_scale(self):
        return torch.tensor(CLIP_SCALE)


def authors_files(directory, shots):
    names = {"keys": f"keys_{shots}shots.pt", "values": f"values_{shots}shots.pt", "best_F": f"best_F_{shots}shots.pt"}
    return {k: os.path.join(directory, v) for k, v in names.items() if os.path.isfile(os.path.join(directory, v))}


def load_tensor(path):
    """A bare tensor saved with torch.save (the authors' cache files), loaded weights-only."""
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any refusal or corruption: one line naming the file
        raise CheckpointError(f'Cannot load "{path}" as a tensor ({type(exc).__name__}: {exc})') from exc
    if not isinstance(tensor, torch.Tensor):
        raise CheckpointError(f'"{path}" holds a {type(tensor).__name__}, not the tensor the authors save')
    return tensor.detach().float()


@TRAINER_REGISTRY.register(name="Tip_Adapter_F")
class TipAdapterF(TipAdapter):
    """Tip-Adapter-F: the cache keys fine-tuned; the epoch is chosen on val (SELECT_ON_TEST: on test)."""

    card = MethodCard(
        reference_config="configs/trainers/Tip_Adapter/vit_b16.yaml",
        short_run=(*SHORT_CACHE, "TRAINER.TIP_ADAPTER.TRAIN_EPOCH", "1"),  # its epochs: not OPTIM.MAX_EPOCH
        published=(TIP_F_PUBLISHED,),
        export=None,
        no_export_reason=NO_EXPORT,
    )

    @property
    def train_epochs(self):
        return self.opts.TRAIN_EPOCH

    learns_by_gradient = True
    learned_init_from_data = True  # the keys start as the cache built from the few-shot features

    def learned_parameters(self):
        return {"cache.adapter.weight": self.model.cache.adapter.weight}

    def build_optimizer(self):
        weight = self.model.cache.adapter.weight
        weight.requires_grad_(True)
        optim = torch.optim.AdamW([weight], lr=self.opts.LR, eps=1e-4)  # their eps; default betas, decay 0.01
        if getattr(self, "train_loader_x", None) is None:
            return optim, None, None
        self.train_loader_x = self.ordered_train_loader(shuffle=True)
        iterations = max(1, self.max_epoch * len(self.train_loader_x))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, iterations)  # stepped every iteration
        scaler = torch.amp.GradScaler("cuda") if self.prec == "amp" else None
        return optim, sched, scaler

    def build_model(self):
        super().build_model()
        self.select_split = "test" if self.opts.SELECT_ON_TEST else "val"
        self.best = (-1.0, None, -1)  # accuracy, keys, epoch

    def build_hooks(self):
        return super().build_hooks() + [BestKeysState()]

    def before_train(self):
        # the selection split's features before the hooks' before_train: a resumed run restores the random
        # state there, and reading a loader draws from it (its base seed), as the uninterrupted run did first
        self.selection = self.selection_features()
        super().before_train()
        if self.opts.SELECT_ON_TEST:
            logger.warning(
                "TRAINER.TIP_ADAPTER.SELECT_ON_TEST: the epoch is chosen on the TEST set and the reported figure "
                "is max(best test accuracy over epochs, post-search test accuracy), as the authors' code does; "
                "this reproduces their published numbers but is not a fair evaluation"
            )

    def selection_features(self):
        if self.select_split == "val" and self.val_loader is None:
            self.select_split = None
            logger.info("No val split: the last epoch's keys are kept")
        return self.split_features(self.select_split) if self.select_split else None

    def apply_gradients(self, losses):
        super().apply_gradients(losses)
        if self.sched is not None:  # the authors' cosine steps every iteration
            self.sched.step()

    def after_epoch(self):
        if self.selection is not None:
            features, labels = self.selection
            cache = self.model.cache
            with torch.no_grad():
                logits = self.model.logits_of_features(features, self.opts.INIT_ALPHA, self.opts.INIT_BETA)
            acc = accuracy(logits, labels)
            logger.info(f"Tip-Adapter-F epoch {self.epoch + 1}: {self.select_split} accuracy {acc:.2f}%")
            if acc > self.best[0]:
                self.best = (acc, copy.deepcopy(cache.adapter.weight.detach()), self.epoch + 1)
        super().after_epoch()

    def finish_cache(self):
        acc, keys, epoch = self.best
        if keys is not None:
            with torch.no_grad():
                self.model.cache.adapter.weight.copy_(keys)
            logger.info(f"Keys of epoch {epoch} ({self.select_split} accuracy {acc:.2f}%)")

    def test(self, split=None):
        result = super().test(split)
        if self.opts.SELECT_ON_TEST and split in (None, "test") and self.best[2] > 0:
            reported = max(result, self.best[0])
            logger.warning(
                f"The authors' reported figure (SELECT_ON_TEST, test-set selection): max({self.best[0]:.2f}, "
                f"{result:.2f}) = {reported:.2f}%"
            )
        return result


class BestKeysState(HookBase):
    """Tip-Adapter-F's best epoch so far (selection accuracy, keys, epoch) in every checkpoint, as
    BestValHook keeps its best result: a resumed run chooses the epoch an uninterrupted run chooses."""

    def state_dict(self):
        acc, keys, epoch = self.trainer.best
        return {} if keys is None else {"accuracy": acc, "keys": keys.detach().cpu(), "epoch": epoch}

    def load_state_dict(self, state):
        if state:
            keys = state["keys"].to(self.trainer.model.cache.adapter.weight.device)
            self.trainer.best = (float(state["accuracy"]), keys, int(state["epoch"]))
