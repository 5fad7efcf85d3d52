"""CoOp: M learned context vectors shared by all images, `[SOS][v1..vM][CLASS].[EOS]`.

Zhou et al., "Learning to Prompt for Vision-Language Models" (IJCV 2022).
"""

import logging

import torch
import torch.nn as nn

from dasslite.config import allow_bool
from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from ..method_card import CROSS_DATASET_COLUMNS, DG_COLUMNS, MethodCard, Published, base2new_rows, columns
from .clip_backbone import TextEncoder
from .learner import encode_images
from .prompt_trainer import PromptTrainer, context_node, init_context, register_class_prompts
from .text_tower import text_tower

logger = logging.getLogger(__name__)

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


class PromptLearner(nn.Module):
    """Holds the learned context `ctx` and builds the (n_cls, 77, width) prompt embeddings.

    State-dict keys match the original code's (`ctx`, `token_prefix`, `token_suffix`), so
    checkpoints load both ways.
    """

    def __init__(self, cfg, classnames, clip_model, node="COOP"):
        super().__init__()
        opts = cfg.TRAINER[node]
        if opts.CLASS_TOKEN_POSITION not in CLASS_TOKEN_POSITIONS:
            raise ConfigError(
                f"TRAINER.{node}.CLASS_TOKEN_POSITION must be one of {CLASS_TOKEN_POSITIONS}, "
                f'got "{opts.CLASS_TOKEN_POSITION}"'
            )
        ctx, prefix_text = self.initial_context(cfg, node, clip_model, len(classnames))
        self.ctx = nn.Parameter(ctx)  # (M, width) or (n_cls, M, width); fp32 master copy
        self.n_ctx = ctx.shape[-2]
        self.n_cls = len(classnames)
        self.class_token_position = opts.CLASS_TOKEN_POSITION

        names = register_class_prompts(self, clip_model, prefix_text, classnames, self.class_template(cfg))
        self.name_lens = [text_tower(clip_model).count_tokens(name) for name in names]

    def class_template(self, cfg):
        """None: prompts "<context> <class>."; a learner whose prompts go on after the class gives a template."""
        return None

    def initial_context(self, cfg, node, clip_model, n_cls):
        """The initial context (fp32) and the text standing in for it in the prompts."""
        opts = cfg.TRAINER[node]
        n_cls_csc = n_cls if opts.CSC else 0
        return init_context(clip_model, opts.N_CTX, opts.CTX_INIT, n_cls_csc, key=f"TRAINER.{node}.CTX_INIT")

    def forward(self):
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.expand(self.n_cls, -1, -1)
        prefix, suffix = self.token_prefix, self.token_suffix
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        return torch.stack([self._reordered(i, ctx[i]) for i in range(self.n_cls)])

    def _reordered(self, i, ctx):
        """[SOS][ctx half][CLASS][ctx half][.EOS..] (middle) or [SOS][CLASS][ctx][.EOS..] (front)."""
        name_len = self.name_lens[i]
        name, rest = self.token_suffix[i, :name_len], self.token_suffix[i, name_len:]
        if self.class_token_position == "middle":
            half = self.n_ctx // 2
            parts = [self.token_prefix[i], ctx[:half], name, ctx[half:], rest]
        else:
            parts = [self.token_prefix[i], name, ctx, rest]
        return torch.cat(parts, dim=0)


class CustomCLIP(nn.Module):
    """Frozen CLIP + CoOp prompts -> logits (B, n_cls). Options from TRAINER.<node>."""

    def __init__(self, cfg, classnames, clip_model, node="COOP", learner_class=None):
        super().__init__()
        self.prompt_learner = (learner_class or PromptLearner)(cfg, classnames, clip_model, node)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.logit_bias = text_tower(clip_model).logit_bias  # None but for the sigmoid-loss families (SigLIP)
        self._text_cache = None

    def text_features(self, normalize=True):
        """Class text features (L2-normalised unless `normalize` is False: DePT's head reads them raw); in
        evaluation they are computed once, not at every batch."""
        learner = self.prompt_learner
        if learner.training or torch.is_grad_enabled():
            self._text_cache = None
            return self._encode_text(normalize)
        key = (self.cache_key(), normalize)
        cache = self._text_cache  # read once: another thread may replace it meanwhile
        if cache is None or cache[0] != key:
            cache = self._text_cache = (key, self._encode_text(normalize))
        return cache[1]

    def cache_key(self):
        """What the cached class features depend on: the context (its storage and in-place version)."""
        ctx = self.prompt_learner.ctx
        return ctx.data_ptr(), ctx._version

    def _encode_text(self, normalize=True):
        features = self.text_encoder(self.prompt_learner(), self.prompt_learner.token_ids)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features

    def forward(self, image, details=False):
        """Logits; with `details`, (logits, image features, class text features), all L2-normalised."""
        image_features = encode_images(self.image_encoder, image, self.text_encoder.dtype)
        text_features = self.text_features()
        logits = self.logit_scale.exp() * image_features.float() @ text_features.float().t()
        if self.logit_bias is not None:
            logits = logits + self.logit_bias.float()
        return (logits, image_features, text_features) if details else logits


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    """Context Optimization: learns only `prompt_learner.ctx`."""

    config_node = "COOP"
    card = MethodCard(
        reference_config="configs/trainers/CoOp/vit_b16.yaml",
        base2new_configs=("vit_b16_ctxv1", "vit_b16_ep50_ctxv1"),
        published=(
            Published(
                "CoOp",
                base2new=base2new_rows(
                    (82.69, 63.22, 71.66),  # Average
                    (76.47, 67.88, 71.92),  # ImageNet
                    (98.0, 89.81, 93.73),  # Caltech101
                    (93.67, 95.29, 94.47),  # OxfordPets
                    (78.12, 60.4, 68.13),  # StanfordCars
                    (97.6, 59.67, 74.06),  # Flowers102
                    (88.33, 82.26, 85.19),  # Food101
                    (40.44, 22.3, 28.75),  # FGVCAircraft
                    (80.6, 65.89, 72.51),  # SUN397
                    (79.44, 41.18, 54.24),  # DTD
                    (92.19, 54.74, 68.69),  # EuroSAT
                    (84.69, 56.05, 67.46),  # UCF101
                ),
                cross_dataset=columns(
                    CROSS_DATASET_COLUMNS,
                    (71.51, 93.7, 89.14, 64.51, 68.71, 85.3, 18.47, 64.15, 41.92, 46.39, 66.55, 63.88),
                ),
                domain_generalization=columns(DG_COLUMNS, (71.51, 64.2, 47.99, 49.71, 75.21, 59.28, 61.72)),
                fewshot={
                    "RN50": {
                        "ImageNet": {1: 57.15, 2: 57.81, 4: 59.99, 8: 61.56, 16: 62.95},
                        "Caltech101": {16: 91.83},
                        "OxfordPets": {16: 87.01},
                        "StanfordCars": {16: 73.36},
                        "Flowers102": {16: 94.51},
                        "Food101": {16: 74.67},
                        "FGVCAircraft": {16: 31.26},
                        "SUN397": {16: 69.26},
                        "DTD": {16: 63.58},
                        "EuroSAT": {16: 83.53},
                        "UCF101": {16: 75.71},
                        "Average": {16: 73.42},
                    },
                    "ViT-B/16": {"Average": {1: 68.09, 2: 70.13, 4: 73.59, 8: 76.45, 16: 79.01}},
                },
            ),
        ),
    )

    @classmethod
    def add_config(cls, cfg):
        allow_bool("TRAINER.COOP.CTX_INIT")  # the Dassl-based repositories' yamls write True / False
        if "COOP" in cfg.TRAINER:
            return
        # CSC: class-specific contexts (one set of M vectors per class); CLASS_TOKEN_POSITION: end, middle or front
        cfg.TRAINER.COOP = context_node(CSC=False, CLASS_TOKEN_POSITION="end")

    def build_custom_clip(self, classnames, clip_model):
        return CustomCLIP(self.cfg, classnames, clip_model, self.config_node)
