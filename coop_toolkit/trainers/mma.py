"""MMA: adapters beside the higher blocks of both towers, joined by an adapter shared between them.

Yang et al., "MMA: Multi-Modal Adapter for Vision-Language Models" (CVPR 2024), as
ZjjConan/Multi-Modal-Adapter runs it (trainers/mmadapter.py, clip/model.py, clip/gsl.py):

* Class prompts "<TEXT_CTX_INIT> <class>." (their yamls: "a photo of a"), embedded once; nothing in
  the prompt learns.
* At layer i in ADAPTER_START..ADAPTER_END (their yamls: 5..12; layer i is block i, counted from 1) each
  tower adds to its block's output the term
      scale * up_i(shared_i(down_i(ln_1(x))))
  of the block's input x, where down_i = ReLU(Linear(width, DIM)) and up_i = Linear(DIM, width) are the
  tower's own and shared_i = ReLU(Linear(DIM, DIM)) is the same module in both towers (scale =
  ADAPTER_SCALE, 0.001 in their yamls). The term's gradient is rescaled as their gradient_scale_layer
  does it: the adapters' parameters get 1 / scale times the true gradient, the stream the true one.
  Layer 0 (never used by their yamls; their train.py default START is 4) adapts the text token
  embeddings and the image tower's ln_pre output the same way, without ln_1 and without the rescaling.
* Adapters built in their order (text, vision, shared; per layer down then up), each Linear then
  re-drawn kaiming_normal_(fan_out, relu) with zero bias, right after their CLIP's construction
  (replayed: authors_init.py), so a seed starts from their values.
* Loss: cross-entropy of logit_scale * normalised image @ normalised text. PREC fp16 runs the adapters
  in fp16 as theirs (`.half()` when CLIP is fp16); here their parameters stay fp32 (the toolkit's master
  copies) and are cast where they run. Default PREC amp, as their yamls.
* Checkpoint: adapter_learner/ with their keys (token_embedding, tokenized_prompts,
  text_adapter.<i>.down.0.*, text_adapter.<i>.up.*, visual_adapter.<i>..., shared_adapter.<i>.0.*).

Their code indexes a list as long as each tower, so an ADAPTER_END past a tower's depth fails there;
here the range is cut to each tower's depth with a notice (a tower shallower than ADAPTER_START, as the
tests' 2-layer CLIPs, gets one adapter, on its last layer). Towers: OpenAI's ViT and timm ViTs (SigLIP)
through the image-tower seam (prompted_encoders.image_tower_blocks), any open_clip text tower through
the text-tower seam; other image towers are refused by name.
"""

import logging
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError
from dasslite.utils.logger import notice_once

from ..method_card import MethodCard, Published, base2new_rows
from .authors_init import is_openai_vit, keeping_the_generator, replay_clip_construction
from .clip_backbone import TextEncoder, clip_dtype
from .learner import LearnerTrainer
from .precision import autocast_for
from .prompted_encoders import image_tower_blocks, vision_blocks, vision_prompt_refusal, vision_width
from .text_tower import UnsupportedBackboneError, model_name, text_tower
from .transformer_blocks import run_blocks

logger = logging.getLogger(__name__)


class GradientScale(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale` (their clip/gsl.py)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def _linear(x, layer):
    """The layer in x's dtype (fp32 master weights beside an fp16 or bf16 CLIP; autocast casts on its own)."""
    return F.linear(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype))


def adapter_term(x, own, shared, scale, norm=None):
    """scale * up(shared(down(norm(x)))), own = the tower's {down, up} at this layer, shared None or the
    shared layer. With a norm (layers 1..) the gradients are rescaled as theirs: 1 / scale to the
    adapters, the true one to x."""
    y = GradientScale.apply(x, scale) if norm is not None else x
    y = F.relu(_linear(norm(y) if norm is not None else y, own.down[0]))
    if shared is not None:
        y = F.relu(_linear(y, shared[0]))
    y = _linear(y, own.up) * scale
    return GradientScale.apply(y, 1.0 / scale) if norm is not None else y


def build_adapters(width, depth, start, end, dim):
    """Their _build_adapter: a list of depth + 1 slots, a module at layers start..end, kaiming re-drawn."""
    slots = [None] * (depth + 1)
    for i in range(start, end + 1):
        if dim == width:  # the shared adapter (DIM -> DIM)
            slots[i] = nn.Sequential(nn.Linear(width, dim), nn.ReLU())
        else:
            down = nn.Sequential(nn.Linear(width, dim), nn.ReLU())
            slots[i] = nn.Sequential(OrderedDict([("down", down), ("up", nn.Linear(dim, width))]))
    adapters = nn.ModuleList(slots)
    for m in adapters.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
    return adapters


def layer_range(opts, depth, tower, key):
    """ADAPTER_START..ADAPTER_END cut to the tower's depth (with a notice when cut)."""
    start, end = min(opts.ADAPTER_START, depth), min(opts.ADAPTER_END, depth)
    if (start, end) != (opts.ADAPTER_START, opts.ADAPTER_END):
        notice_once(
            logger,
            f"{key}.ADAPTER_START..ADAPTER_END {opts.ADAPTER_START}..{opts.ADAPTER_END}: the {tower} tower has "
            f"{depth} layers, so its adapters sit on layers {start}..{end}",
        )
    return start, end


class AdapterLearner(nn.Module):
    """The class prompts' embeddings and the three adapter lists, under the authors' names."""

    def __init__(self, opts, classnames, clip_model, key="TRAINER.MMADAPTER"):
        super().__init__()
        tower, visual = text_tower(clip_model), clip_model.visual
        text_depth, image_depth = len(tower.transformer.resblocks), len(vision_blocks(visual))
        dim = opts.ADAPTER_DIM
        for width, side in ((tower.width, "text"), (vision_width(visual), "image")):
            if dim == width:  # their forward reads .down / .up, which a DIM == width adapter lacks
                raise ConfigError(f"{key}.ADAPTER_DIM is {dim}, the {side} tower's width; use a smaller width")
        prompts = [f"{opts.TEXT_CTX_INIT} {name.replace('_', ' ')}." for name in classnames]
        ids = tower.tokenize(prompts)
        with torch.no_grad():
            embedding = tower.embed(ids).to(clip_dtype(clip_model))
        self.register_buffer("token_embedding", embedding)
        self.register_buffer("tokenized_prompts", ids.to(embedding.device))
        text_range = layer_range(opts, text_depth, "text", key)
        image_range = layer_range(opts, image_depth, "image", key)
        self.text_adapter = build_adapters(tower.width, text_depth, *text_range, dim)
        self.visual_adapter = build_adapters(vision_width(visual), image_depth, *image_range, dim)
        self.shared_adapter = build_adapters(dim, image_depth, *image_range, dim)
        self.adapter_scale = float(opts.ADAPTER_SCALE)

    def _shared(self, i):
        return self.shared_adapter[i] if i < len(self.shared_adapter) else None

    def text_prompts(self):
        """The class prompts' token embeddings, layer 0's adapter added where there is one."""
        x, own = self.token_embedding, self.text_adapter[0]
        return x if own is None else x + adapter_term(x, own, self._shared(0), self.adapter_scale)

    def residual(self, adapters):
        """run_blocks' residual hook for a tower: block k gets the adapter of layer k + 1."""

        def term(k, block, x):
            own = adapters[k + 1]
            if own is None:
                return None
            norm = block.ln_1 if hasattr(block, "ln_1") else block.norm1  # open_clip's or timm's block
            return adapter_term(x, own, self._shared(k + 1), self.adapter_scale, norm)

        return term

    def vision_inject(self, k, x, seq_dim):
        """run_blocks' inject hook: ln_pre's output gets layer 0's adapter where there is one."""
        own = self.visual_adapter[0]
        return x if k != 0 or own is None else x + adapter_term(x, own, self._shared(0), self.adapter_scale)


class AdaptedTextEncoder(TextEncoder):
    """TextEncoder whose blocks run with a residual hook (AdapterLearner.residual)."""

    def run_transformer(self, x, mask, deep_prompts=()):
        (residual,) = deep_prompts
        return run_blocks(self.transformer, x, mask, residual=residual)


class MMACLIP(nn.Module):
    """Frozen CLIP with the adapters in both towers -> logits (B, n_cls); their CustomCLIP's names."""

    def __init__(self, opts, classnames, clip_model):
        super().__init__()
        self.adapter_learner = AdapterLearner(opts, classnames, clip_model)
        self.image_encoder = clip_model.visual
        self.text_encoder = AdaptedTextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.logit_bias = text_tower(clip_model).logit_bias  # None but for the sigmoid-loss families (SigLIP)
        self._text_cache = None

    def encode_text(self):
        learner = self.adapter_learner
        residual = learner.residual(learner.text_adapter)
        features = self.text_encoder(learner.text_prompts(), learner.tokenized_prompts, deep_prompts=(residual,))
        return F.normalize(features, dim=-1)

    def text_features(self):
        """Normalised class features; without grad they are computed once until an adapter changes."""
        if torch.is_grad_enabled():
            return self.encode_text()
        key = tuple((p.data_ptr(), p._version) for p in self.adapter_learner.parameters())
        cache = self._text_cache  # read once: another thread may replace it meanwhile
        if cache is None or cache[0] != key:
            cache = self._text_cache = (key, self.encode_text())
        return cache[1]

    def image_features(self, image, normalize=True):
        learner = self.adapter_learner
        residual = learner.residual(learner.visual_adapter)
        features = image_tower_blocks(self.image_encoder, image, inject=learner.vision_inject, residual=residual)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, image):
        text = self.text_features()
        logits = self.logit_scale.exp() * self.image_features(image) @ text.t()
        return logits if self.logit_bias is None else logits + self.logit_bias


def check_adapter_keys(opts, key):
    if not 0 <= opts.ADAPTER_START <= opts.ADAPTER_END:
        raise ConfigError(
            f"{key}.ADAPTER_START..ADAPTER_END is {opts.ADAPTER_START}..{opts.ADAPTER_END}; give layers "
            "0 <= ADAPTER_START <= ADAPTER_END (their yamls: 5..12)"
        )
    if opts.ADAPTER_DIM < 1:
        raise ConfigError(f"{key}.ADAPTER_DIM is {opts.ADAPTER_DIM}; give the adapters' width (their yamls: 32)")
    if not opts.ADAPTER_SCALE:
        raise ConfigError(f"{key}.ADAPTER_SCALE is 0, which their gradient rescaling (1 / scale) cannot take")


@TRAINER_REGISTRY.register()
class MultiModalAdapter(LearnerTrainer):
    """MMA: learns the text, visual and shared adapters of layers ADAPTER_START..ADAPTER_END."""

    config_node = "MMADAPTER"
    model_name = "adapter_learner"  # their register_model name: OUTPUT_DIR/adapter_learner/
    checkpoint_ignore_keys = ("token_embedding", "tokenized_prompts")  # rebuilt from the class names, as theirs
    vision_refusal = staticmethod(vision_prompt_refusal)  # the README's backbone table
    vision_required = True  # refused image towers refuse the method, not only its image side
    card = MethodCard(
        reference_config="configs/trainers/MultiModalAdapter/vit_b16_ep5.yaml",
        base2new_configs=("vit_b16_ep5", "vit_b16_ep5_imnet"),
        published=(
            Published(
                "MMA",
                source="MMA README (ZjjConan/Multi-Modal-Adapter), ViT-B/16, 16 shots, 3 seeds, base-to-new averages",
                base2new=base2new_rows((83.20, 76.80, 79.87)),
            ),
        ),
        export=None,
        no_export_reason="puts learned adapters into the image encoder's blocks, so open_clip's frozen image "
        "encoder would not give this run's image features and no exported head could reproduce its logits",
    )

    @classmethod
    def add_config(cls, cfg):
        if "MMADAPTER" not in cfg.TRAINER:  # their train.py's extend_cfg, with its defaults
            cfg.TRAINER.MMADAPTER = CN()
            cfg.TRAINER.MMADAPTER.TEXT_CTX_INIT = ""  # the words before the class name (yamls: "a photo of a")
            cfg.TRAINER.MMADAPTER.PREC = "amp"  # fp16, fp32, amp (or bf16)
            cfg.TRAINER.MMADAPTER.ADAPTER_START = 4  # first adapted layer (yamls: 5)
            cfg.TRAINER.MMADAPTER.ADAPTER_END = 12  # last adapted layer
            cfg.TRAINER.MMADAPTER.ADAPTER_DIM = 32  # the adapters' hidden width
            cfg.TRAINER.MMADAPTER.ADAPTER_SCALE = 0.1  # weight of the adapters' terms (yamls: 0.001)

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_adapter_keys(cfg.TRAINER.MMADAPTER, "TRAINER.MMADAPTER")

    def load_frozen_clip(self):
        return keeping_the_generator(super().load_frozen_clip)  # their CLIP's draws are replayed instead

    def build_custom_clip(self, classnames, clip_model):
        why = vision_prompt_refusal(clip_model.visual)
        if why:
            raise UnsupportedBackboneError(
                f"MultiModalAdapter puts adapters beside the image encoder's transformer blocks, but the image "
                f"encoder of {model_name(clip_model)} is {why}. Use a ViT backbone (OpenAI's ViT-B/16, SigLIP, ...)."
            )
        if is_openai_vit(clip_model):
            replay_clip_construction(clip_model)  # their CLIP's draws: the adapters are drawn next
        else:
            notice_once(
                logger,
                f"MultiModalAdapter: the authors' order of random draws is replayed for OpenAI's ViT CLIP only; the "
                f"adapters of {model_name(clip_model)} are drawn from the generator as it is",
            )
        return MMACLIP(self.opts, classnames, clip_model)

    def learned_parameters(self):
        learner = self.model.adapter_learner
        return OrderedDict((f"adapter_learner.{n}", p) for n, p in learner.named_parameters())

    def saved_module(self):
        return self.model.adapter_learner

    # The features protocol (coop_toolkit/trainers/learner.py).
    @torch.no_grad()
    def image_features(self, image, normalize=True):
        with autocast_for(self.prec, self.device):
            return self.model.image_features(image.to(self.device), normalize).float()

    @torch.no_grad()
    def class_features(self, image_features=None):
        with autocast_for(self.prec, self.device):
            return self.model.text_features().float()
