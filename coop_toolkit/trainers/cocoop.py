"""CoCoOp: CoOp's context plus a Meta-Net that shifts it per image, `v_m(x) = v_m + pi(x)`.

Zhou et al., "Conditional Prompt Learning for Vision-Language Models" (CVPR 2022).

The original runs the text encoder once per image in a Python loop, which is why it trains at batch
size 1. Here the prompts of all images in a batch go through the text encoder in one (chunked) pass.
"""

from collections import OrderedDict

import torch
import torch.nn as nn

from dasslite.config import allow_bool
from dasslite.engine.build import TRAINER_REGISTRY

from ..method_card import (
    CROSS_DATASET_COLUMNS,
    DG_COLUMNS,
    PROMPT_LEARNER,
    MethodCard,
    Published,
    base2new_rows,
    columns,
)
from .clip_backbone import TextEncoder
from .learner import encode_images
from .precision import autocast_for
from .prompt_trainer import PromptTrainer, context_node, init_context, register_class_prompts
from .text_tower import text_tower

# Prompts per text-encoder pass when TEXT_CHUNK_SIZE is 0 (auto): bounds activation memory to about
# what the original needed for one image over 1000 classes.
AUTO_CHUNK_PROMPTS = 1024


class MetaNet(nn.Sequential):
    """Linear-ReLU-Linear from an image feature to a context bias; hidden width = feature width / 16."""

    def __init__(self, vis_dim, ctx_dim):
        super().__init__(
            OrderedDict(
                [
                    ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
                ]
            )
        )


class PromptLearner(nn.Module):
    """Context `ctx` (M, width) and `meta_net`; state-dict keys match the original code's."""

    def __init__(self, cfg, classnames, clip_model, node="COCOOP"):
        super().__init__()
        opts = cfg.TRAINER[node]
        ctx, prefix_text = init_context(clip_model, opts.N_CTX, opts.CTX_INIT, 0, key=f"TRAINER.{node}.CTX_INIT")
        self.ctx = nn.Parameter(ctx)
        self.n_ctx = ctx.shape[0]
        self.n_cls = len(classnames)
        vis_dim = text_tower(clip_model).embed_dim  # the image features' width (timm towers have no output_dim)
        self.meta_net = MetaNet(vis_dim, ctx.shape[1])  # fp32 even when CLIP runs in fp16

        register_class_prompts(self, clip_model, prefix_text, classnames)

    def forward(self, im_features, length=None):
        """Prompt embeddings (B, n_cls, length, width) for L2-normalised image features (B, vis_dim).

        `length` keeps only the first positions (the text encoder needs no more than the longest
        end-of-text position).
        """
        bias = self.meta_net(im_features.to(self.ctx.dtype)).unsqueeze(1)  # (B, 1, width)
        ctx_shifted = self.ctx.unsqueeze(0) + bias  # (B, M, width)
        batch = ctx_shifted.shape[0]
        lead = self.token_prefix.shape[1]  # the special tokens before the context (text_tower.py)
        length = length or (lead + self.n_ctx + self.token_suffix.shape[1])
        suffix = self.token_suffix[:, : length - lead - self.n_ctx]
        return torch.cat(
            [
                self.token_prefix.expand(batch, -1, -1, -1),
                ctx_shifted.unsqueeze(1).expand(-1, self.n_cls, -1, -1),
                suffix.expand(batch, -1, -1, -1),
            ],
            dim=2,
        )


class CustomCLIP(nn.Module):
    """Frozen CLIP + image-conditioned prompts -> logits (B, n_cls)."""

    def __init__(self, cfg, classnames, clip_model, node="COCOOP"):
        super().__init__()
        self.prompt_learner = PromptLearner(cfg, classnames, clip_model, node)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.logit_bias = self.text_encoder.tower.logit_bias  # None but for the sigmoid-loss families
        opts = cfg.TRAINER[node]
        self.chunk_size = opts.TEXT_CHUNK_SIZE if opts.TEXT_CHUNK_SIZE > 0 else AUTO_CHUNK_PROMPTS
        self.checkpoint = opts.TEXT_CHECKPOINT

    def forward(self, image):
        image_features = encode_images(self.image_encoder, image, self.text_encoder.dtype)
        return self.logits(image_features)

    def text_features(self, image_features, normalize=True):
        """L2-normalised (unless `normalize` is False) class text features (B, n_cls, embed_dim), one set
        per image; `image_features` are the normalised ones the Meta-Net reads."""
        learner = self.prompt_learner
        token_ids = learner.token_ids
        length = self.text_encoder.used_length(token_ids)
        prompts = learner(image_features, length)  # (B, n_cls, length, width)
        batch, n_cls = prompts.shape[:2]
        # All B x n_cls prompts in one pass: fold the batch into the text encoder's sequence batch.
        text = self.text_encoder(
            prompts.flatten(0, 1), token_ids.repeat(batch, 1), chunk_size=self.chunk_size, checkpoint=self.checkpoint
        )
        text = text.float().view(batch, n_cls, -1)
        return text / text.norm(dim=-1, keepdim=True) if normalize else text

    def logits(self, image_features):
        # Image i is scored only against its own class prompts.
        text = self.text_features(image_features)
        logits = self.logit_scale.exp() * torch.einsum("bd,bcd->bc", image_features, text)
        return logits if self.logit_bias is None else logits + self.logit_bias.float()


@TRAINER_REGISTRY.register()
class CoCoOp(PromptTrainer):
    """Conditional Context Optimization: learns `prompt_learner.ctx` and `prompt_learner.meta_net`."""

    config_node = "COCOOP"
    image_conditioned = True
    card = MethodCard(
        reference_config="configs/trainers/CoCoOp/vit_b16_c16_ep10_batch1.yaml",
        base2new_configs=("vit_b16_c4_ep10_batch1_ctxv1", "vit_b16_c4_ep10_batch1_ctxv1"),
        published=(
            Published(
                "CoCoOp",
                base2new=base2new_rows(
                    (80.47, 71.69, 75.83),  # Average
                    (75.98, 70.43, 73.1),  # ImageNet
                    (97.96, 93.81, 95.84),  # Caltech101
                    (95.2, 97.69, 96.43),  # OxfordPets
                    (70.49, 73.59, 72.01),  # StanfordCars
                    (94.87, 71.75, 81.71),  # Flowers102
                    (90.7, 91.29, 90.99),  # Food101
                    (33.41, 23.71, 27.74),  # FGVCAircraft
                    (79.74, 76.86, 78.27),  # SUN397
                    (77.01, 56.0, 64.85),  # DTD
                    (87.49, 60.04, 71.21),  # EuroSAT
                    (82.33, 73.45, 77.64),  # UCF101
                ),
                cross_dataset=columns(
                    CROSS_DATASET_COLUMNS,
                    (71.02, 94.43, 90.14, 65.32, 71.88, 86.06, 22.94, 67.36, 45.73, 45.37, 68.21, 65.74),
                ),
                domain_generalization=columns(DG_COLUMNS, (71.02, 64.07, 48.75, 50.63, 76.18, 59.91, 62.13)),
                fewshot={"ViT-B/16": {"Average": {1: 66.95, 2: 67.63, 4: 71.98, 8: 72.92, 16: 75.02}}},
            ),
        ),
        export=PROMPT_LEARNER,
    )

    @torch.no_grad()
    def class_features(self, image_features=None):
        if image_features is None:
            raise ValueError("CoCoOp's class text features depend on the image: pass image_features (B, embed_dim)")
        with autocast_for(self.prec, self.device):
            return self.model.text_features(image_features.to(self.device)).float()

    @classmethod
    def add_config(cls, cfg):
        allow_bool("TRAINER.COCOOP.CTX_INIT")  # the Dassl-based repositories' yamls write True / False
        if "COCOOP" in cfg.TRAINER:
            return
        # TEXT_CHUNK_SIZE: prompts per text-encoder pass (0 = automatic); TEXT_CHECKPOINT: recompute the
        # text encoder's activations in backward to save memory
        cfg.TRAINER.COCOOP = context_node(TEXT_CHUNK_SIZE=0, TEXT_CHECKPOINT=False)

    def build_custom_clip(self, classnames, clip_model):
        return CustomCLIP(self.cfg, classnames, clip_model, self.config_node)
