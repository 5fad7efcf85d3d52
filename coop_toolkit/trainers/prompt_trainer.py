"""What CoOp and CoCoOp trainers share: loading CLIP, freezing it, precision, one training step.

A concrete trainer only says which `CustomCLIP` to build (`build_custom_clip`) and which config node
holds its options (`config_node`, e.g. "COOP" for `TRAINER.COOP`).
"""

import contextlib
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from dasslite.engine.trainer import TrainerX
from dasslite.errors import ConfigError
from dasslite.optim.lr_scheduler import build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer
from dasslite.utils.dist import mean_over_processes, wrap_ddp

from .clip_backbone import CONTEXT_LENGTH, clip_dtype, count_tokens, image_resolution, load_clip, tokenize

logger = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32", "amp", "bf16")


def resolve_precision(prec, device, key):
    """The precision to run with on `device`; fp16 and amp need CUDA and fall back to fp32 elsewhere."""
    if prec not in PRECISIONS:
        raise ConfigError(f'{key} must be one of {", ".join(PRECISIONS)}, got "{prec}"')
    if device.type != "cuda" and prec in ("fp16", "amp"):
        logger.warning(f"{key} {prec} needs CUDA; running in fp32 on {device.type}")
        return "fp32"
    return prec


def autocast_for(prec, device):
    if prec == "amp":
        return torch.autocast(device.type, dtype=torch.float16)
    if prec == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def init_context(clip_model, n_ctx, ctx_init, n_cls_csc, key):
    """Initial context vectors (fp32) and the text that stands in for them in the prompt.

    With `ctx_init` words, the context starts as their token embeddings and M becomes their number
    of BPE tokens (the original takes the word count, which misaligns multi-token words). Otherwise
    N(0, 0.02^2) drawn in CLIP's dtype, as the original draws it, so a seed gives the same start.
    `n_cls_csc` > 0 makes class-specific contexts.
    """
    width = clip_model.ln_final.weight.shape[0]
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
        ctx = torch.empty(shape, dtype=clip_dtype(clip_model))
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
        features = image_encoder(image.to(dtype)).float()
    return features / features.norm(dim=-1, keepdim=True)


class PromptTrainer(TrainerX):
    config_node = None  # name of the TRAINER.<NODE> config node holding N_CTX, CTX_INIT, PREC
    checkpoint_ignore_keys = ("token_prefix", "token_suffix")  # rebuilt from the current class names

    @property
    def opts(self):
        return self.cfg.TRAINER[self.config_node]

    def check_cfg(self, cfg):
        prec = cfg.TRAINER[self.config_node].PREC
        if prec not in PRECISIONS:
            raise ConfigError(f'TRAINER.{self.config_node}.PREC must be one of {", ".join(PRECISIONS)}, got "{prec}"')

    def build_custom_clip(self, classnames, clip_model):
        raise NotImplementedError

    def build_model(self):
        cfg = self.cfg
        self.prec = resolve_precision(self.opts.PREC, self.device, f"TRAINER.{self.config_node}.PREC")
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, precision=self.prec)
        check_input_size(cfg.INPUT.SIZE, clip_model)

        logger.info("Building custom CLIP")
        self.model = self.build_custom_clip(self.dm.dataset.classnames, clip_model)
        logger.info("Turning off gradients in both the image and the text encoder")
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith("prompt_learner."))
        learned = sorted(n for n, p in self.model.named_parameters() if p.requires_grad)
        logger.info(f"Parameters to be updated: {set(learned)}")
        self.model.to(self.device)

        learner = self.model.prompt_learner
        self.optim = build_optimizer(learner, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("prompt_learner", learner, self.optim, self.sched)
        self.scaler = torch.amp.GradScaler("cuda") if self.prec == "amp" else None
        # Training steps go through DDP under torchrun (gradients averaged over the processes, so with
        # equal per-process batches the update is the global batch's); self.model stays the plain module.
        self.train_model = wrap_ddp(self.model, self.device)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        with autocast_for(self.prec, self.device):
            output = self.train_model(image)
        loss = F.cross_entropy(output.float(), label)
        if self.scaler is None:
            self.model_backward_and_update(loss)
        else:
            self.detect_anomaly(loss)
            self.optim.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        acc = (output.argmax(dim=1) == label).float().mean().item() * 100
        return mean_over_processes({"loss": loss.item(), "acc": acc}, self.device)

    def model_inference(self, input):
        with autocast_for(self.prec, self.device):
            return self.model(input).float()

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)


def check_input_size(size, clip_model):
    expected = image_resolution(clip_model)
    if tuple(size) != expected:
        raise ConfigError(
            f"INPUT.SIZE is {tuple(size)} but this CLIP backbone takes {expected} images; set INPUT.SIZE {expected}"
        )
