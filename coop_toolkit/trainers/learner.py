"""The trainer layer every method builds on: a frozen CLIP, the parameters the method declares, a step, checkpoints.

`ClipTrainer` is a trainer on a frozen CLIP whose options live in its own node `TRAINER.<config_node>`.
`LearnerTrainer` adds what every method that learns shares, whatever it learns (prompts, an adapter,
a cache, LoRA): it builds the model (`build_custom_clip`), freezes every parameter but the declared
ones (`learned_parameters`), registers the module that holds them with the engine (`saved_module`,
saved as `model_name`), and runs the training step: the forward under the precision's autocast, the
loss terms as a named dict (`compute_losses`), one place for loss scaling, the non-finite check and
the update (`apply_gradients`), DDP under torchrun. Prompt learners add their defaults in
prompt_trainer.py (`PromptTrainer`); docs/adding-a-method.md walks through both.

The features protocol
---------------------
What predict.py, export.py, the Python API (coop_toolkit/api.py: `Run`) and the evaluator read from a
built trainer, besides `model_inference(images) -> logits (B, n_cls)`. Every trainer implements it
(`LearnerTrainer` gives the defaults marked *; `PromptTrainer`, `DeepPromptTrainer` and `ZeroshotCLIP`
fill in the rest):

- `image_features(images, normalize=True) -> (B, d)` fp32, no grad: the image features the logits
  are computed from (L2-normalised unless `normalize=False`). * the model's frozen `image_encoder`.
- `class_features(image_features=None) -> (n_cls, d)` fp32, L2-normalised: one feature per class of
  the class list the trainer was built for (`build_trainer(cfg, classnames=...)`); when
  `image_conditioned` is True they depend on the image: `(B, n_cls, d)` for the given (B, d) features.
- `logit_scale()` (the exp'd scale, fp32 scalar tensor) and `logit_bias()` (None, or a scalar added
  to every logit), so that `model_inference(x) == logit_scale() * image_features(x) @ class_features().T
  (+ logit_bias())`. * `self.model.logit_scale`, no bias.
- class attributes: `image_conditioned` (* False), `frozen_image_encoder` (* False: True only when
  open_clip's own image encoder, normalised, gives `image_features`, which an exported classifier head
  needs), `learns_nothing` (* False; True for zero-shot CLIP: no checkpoint to load) and
  `features_give_logits` (* True; False when the logits are not linear in the image features, as
  Tip-Adapter's cache term: class_features() is then the linear (zero-shot) part of the logits).
  Two more describe training: `learns_by_gradient` (* True; False when what the method learns is built,
  not stepped: Tip-Adapter's cache) and `learned_init_from_data` (* False; True when the learned
  parameters start from the training images' features, not from a seeded draw: Tip-Adapter-F's keys).
"""

import functools
import logging
import operator
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F

from dasslite.engine.trainer import TrainerX
from dasslite.optim.lr_scheduler import build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer
from dasslite.utils.dist import mean_over_processes, wrap_ddp

from .clip_backbone import check_input_size, image_dtype, image_tower, load_clip
from .precision import autocast_for, check_precision, describe_precision, resolve_precision, stored_precision

logger = logging.getLogger(__name__)


def encode_images(image_encoder, image, dtype, normalize=True):
    """fp32 features of the frozen image encoder, L2-normalised unless `normalize` is False (no
    activations kept for backward)."""
    with torch.no_grad():
        features = image_tower(image_encoder, image.to(dtype)).float()
    return features / features.norm(dim=-1, keepdim=True) if normalize else features


class ClipTrainer(TrainerX):
    """A trainer on a frozen CLIP; its options (at least PREC) live in TRAINER.<config_node>."""

    config_node = None  # e.g. "COOP": the trainer reads self.opts = cfg.TRAINER.COOP, nothing else
    learns_nothing = False  # the features protocol (module docstring)
    features_give_logits = True
    learns_by_gradient = True
    learned_init_from_data = False

    @classmethod
    def add_config(cls, cfg):
        """Add the config nodes this trainer reads, with their defaults.

        trainers.extend_cfg calls it for every registered trainer (so any trainer's yaml merges), so it
        must leave a node that already exists alone.
        """

    @property
    def opts(self):
        return self.cfg.TRAINER[self.config_node]

    def check_cfg(self, cfg):
        check_precision(cfg.TRAINER[self.config_node].PREC, f"TRAINER.{self.config_node}.PREC")

    def load_frozen_clip(self):
        """CLIP in the node's precision (sets self.prec), checked against INPUT.SIZE."""
        cfg = self.cfg
        key = f"TRAINER.{self.config_node}.PREC"
        self.prec = resolve_precision(self.opts.PREC, self.device, key)
        logger.info(describe_precision(self.prec, self.device, key))
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, precision=stored_precision(self.prec, self.device))
        check_input_size(cfg.INPUT.SIZE, clip_model)
        return clip_model

    def logit_bias(self):
        """The features protocol: None, or the scalar added to every logit (a SigLIP-style backbone's)."""
        return None


def common_module(names):
    """The dotted name of the deepest module holding every parameter of `names` ("" = the model)."""
    owners = [name.split(".")[:-1] for name in names]
    common = os.path.commonprefix(owners) if owners else []
    return ".".join(common)


class LearnerTrainer(ClipTrainer):
    """A frozen CLIP plus the parameters the method declares; the step and the checkpoints."""

    model_name = "model"  # the engine's name for saved_module(): OUTPUT_DIR/<model_name>/model.pth.tar-N
    checkpoint_ignore_keys = ()  # state-dict keys the model rebuilds itself (dropped when loading)
    image_conditioned = False  # the features protocol (module docstring)
    frozen_image_encoder = False

    # ------------------------------------------------------------ what the method declares
    def build_custom_clip(self, classnames, clip_model):
        """The whole model: frozen CLIP plus what learns. Called once, in build_model."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_custom_clip(classnames, clip_model)")

    def learned_parameters(self):
        """{name in self.model: parameter} of everything that learns; all else stays frozen.

        Declared, not found by a name prefix, so parameters inside the encoders (deep prompts, LoRA) can
        learn too.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement learned_parameters() -> {{name in self.model: parameter}}"
        )

    def saved_module(self):
        """The module the engine registers, optimises and checkpoints; it holds every learned parameter.

        Default: the deepest module of self.model that holds all of them (e.g. `model.adapter`).
        """
        return self.model.get_submodule(common_module(self.learned_parameters()))

    def compute_losses(self, output, label):
        """The loss terms as {name: scalar tensor}; the update minimises their sum. `output` is what
        forward_train returned."""
        return OrderedDict(loss=F.cross_entropy(output.float(), label))

    # ------------------------------------------------------------ building
    def build_model(self):
        clip_model = self.load_frozen_clip()
        logger.info("Building custom CLIP")
        self.model = self.build_custom_clip(self.dm.dataset.classnames, clip_model)
        logger.info("Turning off gradients in both the image and the text encoder")
        self.freeze_all_but_learned()
        self.model.to(self.device)

        module = self.saved_module()
        self.optim = self.build_optimizer(module)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.model_name, module, self.optim, self.sched)
        # loss scaling is for fp16 on CUDA; a GradScaler built without CUDA only warns and disables itself
        self.scaler = torch.amp.GradScaler("cuda") if self.prec == "amp" and self.device.type == "cuda" else None
        # Training steps go through DDP under torchrun (gradients averaged over the processes, so with
        # equal per-process batches the update is the global batch's); self.model stays the plain module.
        self.train_model = wrap_ddp(self.ddp_module(), self.device)

    def ddp_module(self):
        """The module whose forward forward_train calls through self.train_model (DDP under torchrun): the
        model; a method whose step calls something else wraps that (DePT: the towers' raw features)."""
        return self.model

    def build_optimizer(self, module):
        """The optimizer of saved_module() (OPTIM); a method with its own parameter groups overrides it."""
        return build_optimizer(module, self.cfg.OPTIM)

    def freeze_all_but_learned(self):
        learned = self.learned_parameters()
        learned_ids = {id(p) for p in learned.values()}
        saved_ids = {id(p) for p in self.saved_module().parameters()}
        outside = [name for name, p in learned.items() if id(p) not in saved_ids]
        if outside:
            raise ValueError(
                f"{type(self).__name__}: learned parameters {outside} are not in saved_module(), so they would "
                f"be neither optimised nor saved; return a module that holds them from saved_module()"
            )
        for param in self.model.parameters():
            param.requires_grad_(id(param) in learned_ids)
        # Sorted, so that two logs of the same run read the same (a set prints in hash order).
        logger.info("Parameters to be updated: {%s}", ", ".join(repr(name) for name in sorted(learned)))

    # ------------------------------------------------------------ the training step, in pieces
    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output, losses = self.training_step(image, label)
        return mean_over_processes(self.summarize(losses, output, label), self.device)

    def training_step(self, image, label):
        """Forward under the precision's autocast, losses in fp32, then one update. Returns (output, losses)."""
        with autocast_for(self.prec, self.device):
            output = self.forward_train(image)
        losses = self.compute_losses(output, label)
        self.apply_gradients(losses)
        return output, losses

    def forward_train(self, image):
        """What compute_losses receives; goes through self.train_model so that DDP sees the forward."""
        return self.train_model(image)

    def total_loss(self, losses):
        return functools.reduce(operator.add, losses.values())

    def apply_gradients(self, losses):
        """The one place that owns loss scaling (amp), the non-finite check and the optimizer step.

        A method that changes the gradient itself (ProGrad) overrides this and nothing else.
        """
        loss = self.total_loss(losses)
        if self.scaler is None:
            self.model_backward_and_update(loss)
        else:
            self.detect_anomaly(loss)
            self.optim.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()

    def logits_of(self, output):
        return output

    def summarize(self, losses, output, label):
        """What the engine's meters log: the total "loss", each term when there are several, "acc"."""
        summary = {"loss": self.total_loss(losses).item()}
        if len(losses) > 1:
            summary.update((name, value.item()) for name, value in losses.items())
        acc = (self.logits_of(output).argmax(dim=1) == label).float().mean().item() * 100
        return {**summary, "acc": acc}

    def model_inference(self, input):
        with autocast_for(self.prec, self.device):
            return self.model(input).float()

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    # ------------------------------------------------------------ the features protocol (module docstring)
    @torch.no_grad()
    def image_features(self, image, normalize=True):
        encoder = self.model.image_encoder
        with autocast_for(self.prec, self.device):
            return encode_images(encoder, image.to(self.device), image_dtype(encoder), normalize)

    @torch.no_grad()
    def class_features(self, image_features=None):
        raise NotImplementedError(f"{type(self).__name__} must implement class_features(image_features=None)")

    def logit_scale(self):
        return self.model.logit_scale.detach().exp().float()

    def logit_bias(self):
        bias = getattr(self.model, "logit_bias", None)  # the model's own, where it has one (SigLIP)
        return None if bias is None else bias.detach().float()
