"""CLIP-Adapter (Gao et al., IJCV 2023): a residual MLP on the frozen image features, hand-written class prompts.

Facts from the authors' code (read in gaopengcuhk/CLIP-Adapter/clip_adapter.py@08d07f8):
- the adapter is Linear(c, c/4, no bias), ReLU, Linear(c/4, c, no bias), ReLU (ReLU after both);
- it is mixed into the raw image features before they are normalised: f = 0.2 * adapter(f) + 0.8 * f;
- the class features come from one hand-written template per dataset (coop_toolkit/trainers/templates.py:
  CUSTOM_TEMPLATES is their table), and CLIP's own logit scale multiplies the cosine similarities;
- only the adapter learns and is saved, as `clip_adapter` (state-dict keys `fc.0.weight`, `fc.2.weight`).

Generalised here: the authors hard-code the adapter width 1024 (RN50's image-feature width) and the
ratio 0.2 and reduction 4 as literals. The width is read from the backbone (512 for ViT-B/16), and
ratio and reduction are the keys TRAINER.CLIP_ADAPTER.RATIO / REDUCTION with the authors' values.
Their repository has no recipe; its README says to run CoOp's command, so the yamls under
configs/trainers/CLIP_Adapter/ are CoOp's (configs/trainers/CoOp/).

The text features depend only on the frozen CLIP, so they are computed once (the authors re-encode
the prompts at every step; the values are the same).
"""

from collections import OrderedDict

import torch
import torch.nn as nn
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY

from ..method_card import MethodCard, Published, fewshot_rows
from .clip_backbone import image_dtype
from .handwritten import handwritten_class_features
from .learner import LearnerTrainer, encode_images
from .precision import autocast_for
from .templates import template_for
from .text_tower import text_tower


class Adapter(nn.Module):
    """Two bias-free linears with a ReLU after each; `fc.0` and `fc.2` as in the authors' state dict."""

    def __init__(self, width, reduction=4):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(width, width // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(width // reduction, width, bias=False),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.fc(x)


class AdapterCLIP(nn.Module):
    """Frozen CLIP image encoder + adapter, against fixed hand-written class features."""

    def __init__(self, clip_model, class_features, ratio, reduction):
        super().__init__()
        self.image_encoder = clip_model.visual
        self.logit_scale = clip_model.logit_scale
        self.ratio = ratio
        # fp32 whatever CLIP's precision: it is what learns
        self.adapter = Adapter(text_tower(clip_model).embed_dim, reduction)
        self.register_buffer("text_features", class_features, persistent=False)

    def image_features(self, image, normalize=True):
        """The adapted image features: ratio * adapter(f) + (1 - ratio) * f, f the raw CLIP features."""
        frozen = encode_images(self.image_encoder, image, image_dtype(self.image_encoder), normalize=False)
        mixed = self.ratio * self.adapter(frozen) + (1 - self.ratio) * frozen
        return mixed / mixed.norm(dim=-1, keepdim=True) if normalize else mixed

    def forward(self, image):
        return self.logit_scale.exp() * self.image_features(image) @ self.text_features.t()


@TRAINER_REGISTRY.register(name="CLIP_Adapter")  # the authors' trainer name
class CLIPAdapter(LearnerTrainer):
    """CLIP-Adapter: learns the visual adapter only."""

    config_node = "CLIP_ADAPTER"
    model_name = "clip_adapter"  # the authors' register_model name: OUTPUT_DIR/clip_adapter/
    card = MethodCard(
        reference_config="configs/trainers/CLIP_Adapter/vit_b16.yaml",
        published=(
            Published(
                "CLIP-Adapter",
                # RN50, 16/8/4/2/1 shots (read in gaopengcuhk/Tip-Adapter/exp.log@30d2598, "CLIP-Adapter's
                # numerical results are also updated"); the CLIP-Adapter README's figure is older and lower
                # (ImageNet 16 shots about 61.3), with no recipe stated for either
                fewshot={
                    "RN50": fewshot_rows(
                        {
                            "ImageNet": (63.59, 62.68, 61.84, 61.52, 61.20),
                            "SUN397": (69.55, 67.50, 65.96, 63.29, 61.30),
                            "OxfordPets": (87.84, 87.65, 87.46, 86.73, 85.99),
                            "EuroSAT": (84.43, 77.93, 73.38, 63.90, 61.40),
                            "Caltech101": (92.49, 91.40, 89.98, 89.37, 88.60),
                            "DTD": (65.96, 61.00, 56.86, 51.48, 45.80),
                            "FGVCAircraft": (32.10, 26.25, 22.59, 20.10, 17.49),
                            "Food101": (78.25, 78.04, 77.92, 77.22, 76.82),
                            "Flowers102": (93.90, 91.72, 87.17, 81.61, 73.49),
                            "UCF101": (76.76, 73.30, 69.05, 67.12, 62.20),
                            "StanfordCars": (74.01, 67.89, 62.45, 58.74, 55.13),
                        }
                    )
                },
                fewshot_source="Tip-Adapter repository exp.log (RN50; the CLIP-Adapter authors' updated numbers); "
                "Average computed here",
            ),
        ),
        export=None,
        no_export_reason="mixes a learned adapter into the image features, so open_clip's image encoder alone "
        "would not give this run's image features and no exported head could reproduce its logits",
    )

    @classmethod
    def add_config(cls, cfg):
        if "CLIP_ADAPTER" not in cfg.TRAINER:
            cfg.TRAINER.CLIP_ADAPTER = CN()
            cfg.TRAINER.CLIP_ADAPTER.PREC = "fp32"  # fp16, fp32 or amp; the authors run CLIP in fp32
            cfg.TRAINER.CLIP_ADAPTER.RATIO = 0.2  # weight of the adapter's output in the mix (authors: 0.2)
            cfg.TRAINER.CLIP_ADAPTER.REDUCTION = 4  # hidden width = image-feature width / REDUCTION (authors: 4)

    def build_custom_clip(self, classnames, clip_model):
        template = template_for(self.cfg.DATASET.NAME)
        text = handwritten_class_features(clip_model, classnames, [template], self.prec)
        return AdapterCLIP(clip_model, text, self.opts.RATIO, self.opts.REDUCTION)

    def learned_parameters(self):
        return OrderedDict((f"adapter.{n}", p) for n, p in self.model.adapter.named_parameters())

    def saved_module(self):
        return self.model.adapter  # not the deepest holder (adapter.fc): the authors' keys start with fc.

    # The features protocol (coop_toolkit/trainers/learner.py).
    @torch.no_grad()
    def image_features(self, image, normalize=True):
        with autocast_for(self.prec, self.device):
            return self.model.image_features(image.to(self.device), normalize).float()

    def class_features(self, image_features=None):
        return self.model.text_features
