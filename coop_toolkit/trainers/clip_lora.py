"""CLIP-LoRA (Zanella & Ben Ayed, CVPR 2024 workshops): low-rank adapters on the attention projections of
both CLIP encoders.

Facts from the authors' code (read in MaxZanella/CLIP-LoRA, loralib/layers.py, loralib/utils.py,
lora.py, run_utils.py @358f0d7):
- defaults: rank 2, alpha 1, dropout 0.25, on the q, k and v projections of every block of both
  encoders; the text blocks are numbered first, then the vision blocks (`layer_<i>` in their file);
- each adapted projection gets `w_lora_A` (r, in) initialised kaiming_uniform(a=sqrt(5)) and
  `w_lora_B` (out, r) initialised to zeros, and computes W x + b + scaling * B A dropout(x): the
  dropout acts on the LoRA branch's input only;
- scaling = alpha / sqrt(r) (their `alpha / r` line is commented out): 0.707 with the defaults;
- classes are encoded from "a photo of a {}." for every dataset, and the logits are 100 * cosine
  (a fixed 100, not CLIP's learned scale);
- the recipe: 500 x shots iterations at batch 32, AdamW (lr 2e-4, weight decay 1e-2), cosine to 1e-6
  stepped every iteration, no warmup, no model selection (configs/trainers/CLIP_LoRA/vit_b16.yaml);
- their file (`save_lora`): {"weights": {"layer_<i>": {"q_proj": {"w_lora_A", "w_lora_B"}, ...}},
  "metadata": {"r", "alpha", "encoder", "params", "position"}} at
  <save_path>/<backbone>/<dataset>/<shots>shots/seed<seed>/<filename>.pt.

Here the LoRA terms are added to open_clip's own nn.MultiheadAttention parameters (`in_proj_weight`'s
q/k/v slices, `out_proj` for "o") rather than re-creating the projections. In eval mode the adapters
are merged into the weights (exact: dropout is off), computed per call from the frozen weights so that
no forward changes a module (several threads may share one model), and attention is torch's own
multi_head_attention_forward. In training the dropout on the LoRA input makes merging inexact, so the
projections are computed apart and attention is scaled_dot_product_attention, as the authors do.
"""

import logging
import math
import os
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.errors import CheckpointError, ConfigError
from dasslite.utils.io import atomic_write

from ..method_card import CLASSIFIER_HEAD, MethodCard
from .clip_backbone import TextEncoder, image_dtype
from .learner import LearnerTrainer
from .precision import autocast_for
from .text_tower import UnsupportedBackboneError, model_name, text_tower

logger = logging.getLogger(__name__)

PROJECTIONS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "proj"}  # --params -> their module names
ENCODERS = ("text", "vision", "both")
# The authors' block sets for 12-block towers (INDEX_POSITIONS_TEXT / _VISION); "all" is every block of
# the tower (theirs lists 0-11, and 0-23 for ViT-L/14's vision tower).
POSITIONS = {
    "bottom": (0, 1, 2, 3),
    "mid": (4, 5, 6, 7),
    "up": (8, 9, 10, 11),
    "half-up": (6, 7, 8, 9, 10, 11),
    "half-bottom": (0, 1, 2, 3, 4, 5),
    "top3": (9, 10, 11),
}
TEMPLATE = "a photo of a {}."  # the authors' template for every dataset
LOGIT_SCALE = 100.0  # the authors' fixed scale


class LoRA(nn.Module):
    """The low-rank pair of one projection: delta W = B @ A, with the authors' names and initialisation."""

    def __init__(self, in_features, out_features, r, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)  # its own mask per projection, as the authors' LinearLoRA
        self.w_lora_A = nn.Parameter(torch.empty(r, in_features))
        self.w_lora_B = nn.Parameter(torch.zeros(out_features, r))
        nn.init.kaiming_uniform_(self.w_lora_A, a=math.sqrt(5))

    def delta(self):
        return self.w_lora_B @ self.w_lora_A

    def branch(self, x):
        """B A dropout(x): the LoRA path of a training forward."""
        return F.linear(F.linear(self.dropout(x), self.w_lora_A.to(x.dtype)), self.w_lora_B.to(x.dtype))


class LoRAAttention(nn.Module):
    """A self-attention nn.MultiheadAttention (`base`, frozen) plus LoRA on some of q, k, v and the output.

    Called as open_clip's blocks call their attention: attn(x, x, x, need_weights=False, attn_mask=m).
    """

    def __init__(self, base, projections, r, alpha, dropout):
        super().__init__()
        if not base._qkv_same_embed_dim or base.bias_k is not None or base.add_zero_attn:
            raise ValueError("CLIP-LoRA adapts self-attention with one packed in_proj_weight (CLIP's)")
        self.base = base
        self.scaling = alpha / math.sqrt(r)  # the authors' scaling (their alpha / r is commented out)
        width = base.embed_dim
        for p in projections:
            setattr(self, PROJECTIONS[p], LoRA(width, width, r, dropout))
        self.pairs = [getattr(self, PROJECTIONS[p]) for p in projections]

    @property
    def lora_training(self):
        """The mode of the LoRA pairs (the module the trainer registers and switches), not this wrapper's."""
        return self.pairs[0].training

    def loras(self):
        return [getattr(self, name, None) for name in ("q_proj", "k_proj", "v_proj")]

    def merged_in_proj(self):
        """in_proj_weight + scaling * [B_q A_q; B_k A_k; B_v A_v] (a zero block where there is no LoRA)."""
        weight = self.base.in_proj_weight
        deltas = [
            torch.zeros_like(w) if lora is None else lora.delta() for lora, w in zip(self.loras(), weight.chunk(3))
        ]
        return weight + (self.scaling * torch.cat(deltas)).to(weight.dtype)

    def merged_out_proj(self):
        weight = self.base.out_proj.weight
        lora = getattr(self, "proj", None)
        return weight if lora is None else weight + (self.scaling * lora.delta()).to(weight.dtype)

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **kwargs):
        if need_weights or kwargs.get("key_padding_mask") is not None:
            raise ValueError("LoRAAttention computes self-attention without weights or a padding mask")
        # (L, N, D), contiguous: F.linear on a transposed view multiplies position by position, about twice as
        # slow (coop_toolkit/trainers/transformer_blocks.py)
        x = query.transpose(0, 1).contiguous() if self.base.batch_first else query
        out = self._unmerged(x, attn_mask) if self.lora_training else self._merged(x, attn_mask)
        return (out.transpose(0, 1) if self.base.batch_first else out), None

    def _merged(self, x, mask):
        base = self.base
        return F.multi_head_attention_forward(
            x,
            x,
            x,
            base.embed_dim,
            base.num_heads,
            self.merged_in_proj(),
            base.in_proj_bias,
            None,
            None,
            False,
            0.0,
            self.merged_out_proj(),
            base.out_proj.bias,
            training=False,
            need_weights=False,
            attn_mask=mask,
        )[0]

    def _unmerged(self, x, mask):
        base = self.base
        qkv = list(F.linear(x, base.in_proj_weight, base.in_proj_bias).chunk(3, dim=-1))
        for i, lora in enumerate(self.loras()):  # q, k, v in turn: each draws its own dropout mask
            if lora is not None:
                qkv[i] = qkv[i] + self.scaling * lora.branch(x)
        length, batch, width = x.shape
        heads = base.num_heads
        q, k, v = (t.reshape(length, batch * heads, width // heads).transpose(0, 1) for t in qkv)
        mask = mask.to(q.dtype) if mask is not None and mask.is_floating_point() else mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N*H, L, D/H)
        out = out.transpose(0, 1).reshape(length, batch, width)
        projected = F.linear(out, base.out_proj.weight, base.out_proj.bias)
        lora = getattr(self, "proj", None)
        return projected if lora is None else projected + self.scaling * lora.branch(out)


def block_indices(position, depth, key):
    if position == "all":
        return tuple(range(depth))
    if position not in POSITIONS:
        raise ConfigError(f'{key} must be "all" or one of {", ".join(POSITIONS)}, got "{position}"')
    if max(POSITIONS[position]) >= depth:
        raise ConfigError(f'{key} "{position}" needs 12 blocks; this tower has {depth}: use "all"')
    return POSITIONS[position]


def lora_vision_refusal(visual):
    """None where LoRA reaches the image tower's attention (open_clip's ViT: nn.MultiheadAttention in every
    block, as the authors' OpenAI CLIP), else why not (the README's backbone table quotes it)."""
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not all(isinstance(getattr(b, "attn", None), nn.MultiheadAttention) for b in blocks):
        kind = type(getattr(visual, "trunk", visual)).__name__
        return f"a {kind}, whose attention is not open_clip's nn.MultiheadAttention"
    return None


def apply_lora(clip_model, opts, key="TRAINER.CLIP_LORA"):
    """Replace the chosen blocks' attention by LoRAAttention; returns {"layer_<i>": LoRAAttention} in the
    authors' order (text blocks, then vision blocks)."""
    towers = []
    if opts.ENCODER in ("text", "both"):
        towers.append(text_tower(clip_model).transformer)
    if opts.ENCODER in ("vision", "both"):
        why = lora_vision_refusal(clip_model.visual)
        if why:
            raise UnsupportedBackboneError(
                f"{key}.ENCODER {opts.ENCODER} puts LoRA into the image encoder's attention, but the image encoder "
                f"of {model_name(clip_model)} is {why}; set {key}.ENCODER text (LoRA in the text encoder only)"
            )
        towers.append(clip_model.visual.transformer)
    layers = OrderedDict()
    for tower in towers:
        for i in block_indices(opts.POSITION, len(tower.resblocks), f"{key}.POSITION"):
            block = tower.resblocks[i]
            block.attn = LoRAAttention(block.attn, opts.PARAMS, opts.R, opts.ALPHA, opts.DROPOUT_RATE)
            layers[f"layer_{len(layers)}"] = block.attn
    return layers


class LoRACLIP(nn.Module):
    """CLIP with LoRA in its attention; `lora` holds the adapters (the saved module), keyed like the
    authors' file: lora.layer_<i>.q_proj.w_lora_A."""

    def __init__(self, clip_model, classnames, opts):
        super().__init__()
        layers = apply_lora(clip_model, opts)
        # First, so that named_parameters() (which names a shared parameter once) calls them lora.*
        self.lora = nn.ModuleDict(
            (name, nn.ModuleDict((p, getattr(attn, p)) for p in map(PROJECTIONS.get, opts.PARAMS)))
            for name, attn in layers.items()
        )
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.token_embedding = text_tower(clip_model).token_embedding
        prompts = [TEMPLATE.format(name.replace("_", " ")) for name in classnames]
        self.register_buffer("token_ids", text_tower(clip_model).tokenize(prompts), persistent=False)
        self._text_cache = None  # (LoRA weight versions, class features): see class_text

    def encode_image(self, image):
        features = self.image_encoder(image.to(image_dtype(self.image_encoder))).float()
        return features / features.norm(dim=-1, keepdim=True)

    def encode_text(self):
        features = self.text_encoder(self.token_embedding(self.token_ids), self.token_ids).float()
        return features / features.norm(dim=-1, keepdim=True)

    def class_text(self):
        """encode_text() in training; in eval, encoded once per state of the LoRA weights.

        The cache is keyed on the weights' version counters (every optimizer step and load bumps them).
        Its value is a function of that key alone, so a thread that finds it stale and encodes again
        stores the same values: concurrent calls agree, and no module's parameters or mode change.
        """
        if self.lora.training:
            return self.encode_text()
        key = tuple(p._version for p in self.lora.parameters())
        cached = self._text_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            features = self.encode_text()
        self._text_cache = (key, features)
        return features

    def forward(self, image):
        return LOGIT_SCALE * self.encode_image(image) @ self.class_text().t()


def lora_node():
    node = CN()
    node.PREC = "amp"  # fp16, fp32, amp or bf16; the authors autocast to fp16 with a GradScaler (amp)
    node.R = 2  # rank of each B @ A (--r)
    node.ALPHA = 1  # scaling = ALPHA / sqrt(R), as their code computes it (--alpha)
    node.DROPOUT_RATE = 0.25  # dropout on the LoRA branch's input, training only (--dropout_rate)
    node.ENCODER = "both"  # text, vision or both (--encoder)
    node.PARAMS = ["q", "k", "v"]  # which of q, k, v, o get LoRA (--params)
    node.POSITION = "all"  # which blocks: all, bottom, mid, up, half-up, half-bottom, top3 (--position)
    node.N_ITERS = 500  # training iterations = N_ITERS x DATASET.NUM_SHOTS (--n_iters)
    node.ETA_MIN = 1e-6  # the cosine schedule's final learning rate (stepped every iteration)
    node.SAVE_PATH = ""  # also write the authors' file under SAVE_PATH after training ("" = not) (--save_path)
    node.FILENAME = "lora_weights"  # its name (--filename)
    return node


class FirstBatches:
    """The first `n` batches of a loader (the last epoch of an iteration-counted run stops mid-way)."""

    def __init__(self, loader, n):
        self.loader, self.n, self.sampler = loader, n, loader.sampler

    def __len__(self):
        return self.n

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                return
            yield batch


@TRAINER_REGISTRY.register(name="CLIP_LoRA")
class CLIPLoRA(LearnerTrainer):
    """CLIP-LoRA: learns the LoRA pairs only; iterations, not epochs, count the training."""

    config_node = "CLIP_LORA"
    model_name = "lora"
    # No published rows: the authors' README shows a figure only, and the paper's table was not at hand.
    card = MethodCard(
        reference_config="configs/trainers/CLIP_LoRA/vit_b16.yaml",
        short_run=("TRAINER.CLIP_LORA.N_ITERS", "1"),  # N_ITERS x shots iterations: not OPTIM.MAX_EPOCH
        export=CLASSIFIER_HEAD,  # with TRAINER.CLIP_LORA.ENCODER text; else refused as below
        no_export_reason="learns LoRA inside the image encoder (TRAINER.CLIP_LORA.ENCODER vision or both), so "
        "open_clip's image encoder would not give this run's image features and no exported head could "
        "reproduce its logits",
    )
    # The README's backbone table (coop_toolkit/backbone_families.py): where the default ENCODER both refuses.
    vision_refusal = staticmethod(lora_vision_refusal)

    @classmethod
    def add_config(cls, cfg):
        if "CLIP_LORA" not in cfg.TRAINER:
            cfg.TRAINER.CLIP_LORA = lora_node()

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        opts = cfg.TRAINER.CLIP_LORA
        if opts.ENCODER not in ENCODERS:
            raise ConfigError(f'TRAINER.CLIP_LORA.ENCODER must be one of {", ".join(ENCODERS)}, got "{opts.ENCODER}"')
        wrong = [p for p in opts.PARAMS if p not in PROJECTIONS] or not opts.PARAMS
        if wrong:
            raise ConfigError(f"TRAINER.CLIP_LORA.PARAMS must be a non-empty subset of q, k, v, o, got {opts.PARAMS}")
        if opts.R < 1 or not 0 <= opts.DROPOUT_RATE < 1:
            raise ConfigError(
                f"TRAINER.CLIP_LORA.R must be >= 1 and DROPOUT_RATE in [0, 1), got {opts.R}, {opts.DROPOUT_RATE}"
            )

    @property
    def frozen_image_encoder(self):  # the features protocol: open_clip's image encoder as it is
        return self.opts.ENCODER == "text"

    def build_custom_clip(self, classnames, clip_model):
        return LoRACLIP(clip_model, classnames, self.opts)

    def learned_parameters(self):
        return OrderedDict((f"lora.{n}", p) for n, p in self.model.lora.named_parameters())

    def build_model(self):
        super().build_model()
        loader = getattr(self, "train_loader_x", None)
        if loader is None:  # built from a class list: nothing to train
            return
        self.total_iters = self.opts.N_ITERS * self.cfg.DATASET.NUM_SHOTS
        self.max_epoch = math.ceil(self.total_iters / len(loader))
        logger.info(f"{self.total_iters} iterations (N_ITERS x shots) = {self.max_epoch} epochs of {len(loader)}")
        # The authors' schedule steps every iteration; the engine leaves a scheduler stepped within the
        # epoch alone (LRSchedulerHook) and saves it with the model.
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.optim, self.total_iters, eta_min=self.opts.ETA_MIN)
        self.sched = self._scheds[self.model_name] = sched

    def run_epoch(self):
        loader = self.train_loader_x
        left = self.total_iters - self.epoch * len(loader)
        if left < len(loader):
            self.train_loader_x = FirstBatches(loader, left)
        try:
            super().run_epoch()
        finally:
            self.train_loader_x = loader

    def apply_gradients(self, losses):
        super().apply_gradients(losses)
        self.sched.step()

    def after_train(self):
        super().after_train()
        if self.opts.SAVE_PATH:
            save_lora(self.model.lora, authors_path(self.cfg), self.opts)

    def load_model(self, directory, epoch=None):
        """The engine's checkpoint, or the authors' file when `directory` holds <FILENAME>.pt."""
        path = os.path.join(directory or "", f"{self.opts.FILENAME}.pt")
        if directory and os.path.isfile(path):
            load_lora(self.model.lora, path, self.opts)
            return None
        return super().load_model(directory, epoch)

    # The features protocol (coop_toolkit/trainers/learner.py); image_features is LearnerTrainer's.
    @torch.no_grad()
    def class_features(self, image_features=None):
        with autocast_for(self.prec, self.device):
            return self.model.class_text()

    def logit_scale(self):
        return torch.tensor(LOGIT_SCALE)


def authors_path(cfg):
    """<SAVE_PATH>/<backbone>/<dataset>/<shots>shots/seed<seed>/<FILENAME>.pt, as their save_lora names it."""
    opts = cfg.TRAINER.CLIP_LORA
    backbone = cfg.MODEL.BACKBONE.NAME.replace("/", "").replace("-", "").lower()
    dataset = cfg.DATASET.NAME.lower()
    folder = os.path.join(opts.SAVE_PATH, backbone, dataset, f"{cfg.DATASET.NUM_SHOTS}shots", f"seed{cfg.SEED}")
    return os.path.join(folder, f"{opts.FILENAME}.pt")


def metadata(opts):
    return {
        "r": opts.R,
        "alpha": opts.ALPHA,
        "encoder": opts.ENCODER,
        "params": list(opts.PARAMS),
        "position": opts.POSITION,
    }


def save_lora(lora, path, opts):
    """The authors' file: nested {"weights": {layer: {projection: {w_lora_A, w_lora_B}}}, "metadata"}."""
    weights = {
        layer: {proj: {k: v.detach().cpu() for k, v in pair.state_dict().items()} for proj, pair in projections.items()}
        for layer, projections in lora.items()
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save({"weights": weights, "metadata": metadata(opts)}, f)
    logger.info(f"LoRA weights saved to {path}")


def load_lora(lora, path, opts):
    """Load the authors' file into `lora` (weights only); a metadata mismatch names the key to set."""
    ckpt = load_checkpoint(path)
    saved = ckpt.get("metadata") or {}
    for name, value in metadata(opts).items():
        if saved.get(name) != value:
            raise CheckpointError(
                f'"{path}" was trained with {name}={saved.get(name)!r}, this run has {value!r}: set '
                f"TRAINER.CLIP_LORA.{name.upper()} to match"
            )
    state = {
        f"{layer}.{proj}.{k}": v
        for layer, projections in ckpt["weights"].items()
        for proj, pair in projections.items()
        for k, v in pair.items()
    }
    missing = set(lora.state_dict()) ^ set(state)
    if missing:
        raise CheckpointError(f'"{path}" does not fit this model (keys differing: {sorted(missing)[:6]})')
    lora.load_state_dict(state)
    logger.info(f"LoRA weights loaded from {path}")
