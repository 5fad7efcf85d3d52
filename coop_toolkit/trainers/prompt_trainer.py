"""What the CLIP trainers share: their config node, loading CLIP, freezing it, the training step.

`ClipTrainer` is a trainer on a frozen CLIP whose options live in its own node `TRAINER.<config_node>`.
`PromptTrainer` adds what learns: a concrete method says which `CustomCLIP` to build
(`build_custom_clip`), which of its parameters learn (`learned_parameters`), which module checkpoints
hold (`saved_module`, registered as `model_name`), and its loss terms (`compute_losses`). The training
step is split so that a method replaces only the piece it changes (docs/adding-a-method.md).
"""

import functools
import logging
import operator
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.trainer import TrainerX
from dasslite.errors import ConfigError
from dasslite.optim.lr_scheduler import build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer
from dasslite.utils.dist import mean_over_processes, wrap_ddp

from .clip_backbone import (
    CONTEXT_LENGTH,
    check_input_size,
    count_tokens,
    draw_dtype,
    image_tower,
    load_clip,
    tokenize,
)
from .precision import (
    PRECISIONS,
    autocast_for,
    check_precision,
    describe_precision,
    resolve_precision,
    stored_precision,
)

__all__ = ["PRECISIONS", "autocast_for", "resolve_precision", "ClipTrainer", "PromptTrainer"]

logger = logging.getLogger(__name__)


def context_node(**extra):
    """A trainer node with the keys every CoOp-style prompt has (N_CTX, CTX_INIT, PREC), then `extra`."""
    node = CN()
    node.N_CTX = 16  # number of context vectors M (replaced by the token count of CTX_INIT)
    node.CTX_INIT = ""  # initialise the context from these words, e.g. "a photo of a"
    node.PREC = "fp16"  # fp16, fp32, amp or bf16 (fp16/amp fall back to fp32 on CPU)
    for key, value in extra.items():
        node[key] = value
    return node


def init_context(clip_model, n_ctx, ctx_init, n_cls_csc, key):
    """Initial context vectors (fp32) and the text that stands in for them in the prompt.

    With `ctx_init` words, the context starts as their token embeddings and M becomes their number
    of BPE tokens (the original takes the word count, which misaligns multi-token words). Otherwise
    N(0, 0.02^2) drawn in CLIP's dtype, as the original draws it, so a seed gives the same start
    (clip_backbone.draw_dtype).
    `n_cls_csc` > 0 makes class-specific contexts.
    """
    width = clip_model.ln_final.weight.shape[0]
    if ctx_init is True:
        raise ConfigError(
            f"{key} is True (as in the KgCoOp / ProGrad yamls, whose trainers choose the words themselves); "
            f'this trainer needs the words, e.g. {key} "a photo of a", or False / "" for a random context'
        )
    if ctx_init:
        text = ctx_init.replace("_", " ")
        n_tokens = count_tokens(text)
        if n_tokens + 3 > CONTEXT_LENGTH:  # SOS, EOS and at least one class token must still fit
            raise ConfigError(
                f'{key} "{text}" has {n_tokens} tokens; at most {CONTEXT_LENGTH - 3} fit in CLIP\'s '
                f"{CONTEXT_LENGTH}-token context. Use fewer words."
            )
        with torch.no_grad():
            ctx = clip_model.token_embedding(tokenize([text]))[0, 1 : 1 + n_tokens].float()
        if n_cls_csc:
            ctx = ctx.expand(n_cls_csc, -1, -1).clone()
        logger.info(f'Initial context: "{text}"')
    else:
        if not 1 <= n_ctx <= CONTEXT_LENGTH - 3:
            raise ConfigError(f"N_CTX must be between 1 and {CONTEXT_LENGTH - 3}, got {n_ctx}")
        shape = (n_cls_csc, n_ctx, width) if n_cls_csc else (n_ctx, width)
        logger.info("Initializing class-specific contexts" if n_cls_csc else "Initializing a generic context")
        ctx = torch.empty(shape, dtype=draw_dtype(clip_model))
        nn.init.normal_(ctx, std=0.02)
        ctx = ctx.float()
        text = " ".join(["X"] * n_ctx)
        logger.info(f'Initial context: "{text}"')
    logger.info(f"Number of context words (tokens): {ctx.shape[-2]}")
    return ctx, text


def register_class_prompts(learner, clip_model, prefix_text, classnames):
    """Give `learner` the frozen pieces around its context, for prompts "<prefix_text> <class>.".

    Buffers: `token_prefix` (SOS), `token_suffix` (class tokens, ".", EOS, padding) and `token_ids`
    (not saved). The two embedding buffers carry the original's state-dict names, so checkpoints
    load both ways. Returns the class names as written in the prompts.
    """
    names = [name.replace("_", " ") for name in classnames]
    token_ids = tokenize([f"{prefix_text} {name}." for name in names])
    with torch.no_grad():
        embedding = clip_model.token_embedding(token_ids).float()
    learner.register_buffer("token_prefix", embedding[:, :1])
    learner.register_buffer("token_suffix", embedding[:, 1 + learner.n_ctx :])
    learner.register_buffer("token_ids", token_ids, persistent=False)
    return names


def encode_images(image_encoder, image, dtype):
    """L2-normalised fp32 features of the frozen image encoder (no activations kept for backward)."""
    with torch.no_grad():
        features = image_tower(image_encoder, image.to(dtype)).float()
    return features / features.norm(dim=-1, keepdim=True)


class ClipTrainer(TrainerX):
    """A trainer on a frozen CLIP; its options (at least PREC) live in TRAINER.<config_node>."""

    config_node = None  # e.g. "COOP": the trainer reads self.opts = cfg.TRAINER.COOP, nothing else

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


class PromptTrainer(ClipTrainer):
    model_name = "prompt_learner"  # the engine's name for saved_module(): OUTPUT_DIR/<model_name>/model.pth.tar-N
    checkpoint_ignore_keys = ("token_prefix", "token_suffix")  # rebuilt from the current class names
    # The features API (coop_toolkit/api.py, export.py): logits = logit_scale() * image @ class features.
    # True when the class text features depend on the image (CoCoOp), so no fixed classifier exists.
    image_conditioned = False
    frozen_image_encoder = True  # image features are frozen CLIP's, so open_clip alone reproduces them

    # ------------------------------------------------------------ what the method declares
    def build_custom_clip(self, classnames, clip_model):
        """The whole model: frozen CLIP plus what learns. Called once, in build_model."""
        raise NotImplementedError

    def learned_parameters(self):
        """{name in self.model: parameter} of everything that learns; all else stays frozen.

        Declared, not found by a name prefix, so prompts that live inside the encoders can learn too.
        Default: every parameter of the prompt learner.
        """
        return OrderedDict((f"prompt_learner.{name}", p) for name, p in self.model.prompt_learner.named_parameters())

    def saved_module(self):
        """The module the engine registers, optimises and checkpoints; it holds every learned parameter."""
        return self.model.prompt_learner

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
        self.optim = build_optimizer(module, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model(self.model_name, module, self.optim, self.sched)
        self.scaler = torch.amp.GradScaler("cuda") if self.prec == "amp" else None
        # Training steps go through DDP under torchrun (gradients averaged over the processes, so with
        # equal per-process batches the update is the global batch's); self.model stays the plain module.
        self.train_model = wrap_ddp(self.model, self.device)

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
        logger.info(f"Parameters to be updated: {set(learned)}")

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

    @torch.no_grad()
    def image_features(self, image):
        """L2-normalised fp32 features (B, embed_dim) of the frozen image encoder."""
        with autocast_for(self.prec, self.device):
            return encode_images(self.model.image_encoder, image.to(self.device), self.model.text_encoder.dtype)

    @torch.no_grad()
    def class_features(self, image_features=None):
        """L2-normalised fp32 class text features (n_cls, embed_dim); image-conditioned: (B, n_cls, embed_dim)."""
        with autocast_for(self.prec, self.device):
            return self.model.text_features().float()

    def logit_scale(self):
        return self.model.logit_scale.detach().exp().float()
