"""Zero-shot CLIP baselines: one hand-written template per dataset, or an ensemble of templates."""

import logging

import torch

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from ..method_card import CROSS_DATASET_COLUMNS, DG_COLUMNS, MethodCard, Published, base2new_rows, columns
from .clip_backbone import clip_dtype
from .coop import CoOp
from .handwritten import handwritten_class_features
from .learner import ClipTrainer, encode_images
from .precision import autocast_for
from .templates import ensemble_templates, template_for
from .text_tower import text_tower

logger = logging.getLogger(__name__)

CLIP_CROSS_DATASET = columns(
    CROSS_DATASET_COLUMNS, (66.72, 92.94, 89.07, 65.29, 71.3, 86.11, 24.87, 62.62, 44.56, 47.69, 66.77, 65.12)
)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipTrainer):
    """Classifies with the dataset's template; nothing is trained (run with --eval-only).

    Its node is CoOp's (TRAINER.COOP, of which it reads PREC), as in the original: it runs with
    CoOp's yamls.
    """

    config_node = "COOP"
    add_config = CoOp.add_config
    # The zero-shot RN50 column: Tip-Adapter's exp.log; ViT-B/16: the CLIP row of CoCoOp's Table 2.
    card = MethodCard(
        reference_config="configs/trainers/CoOp/vit_b16.yaml",
        published=(
            Published(
                "CLIP",
                base2new=base2new_rows(
                    (69.34, 74.22, 71.7),  # Average
                    (72.43, 68.14, 70.22),  # ImageNet
                    (96.84, 94.0, 95.4),  # Caltech101
                    (91.17, 97.26, 94.12),  # OxfordPets
                    (63.37, 74.89, 68.65),  # StanfordCars
                    (72.08, 77.8, 74.83),  # Flowers102
                    (90.1, 91.22, 90.66),  # Food101
                    (27.19, 36.29, 31.09),  # FGVCAircraft
                    (69.36, 75.35, 72.23),  # SUN397
                    (53.24, 59.9, 56.37),  # DTD
                    (56.48, 64.05, 60.03),  # EuroSAT
                    (70.53, 77.5, 73.85),  # UCF101
                ),
                cross_dataset=CLIP_CROSS_DATASET,
                domain_generalization=columns(DG_COLUMNS, (66.73, 60.83, 46.15, 47.77, 73.96, 57.18, 59.08)),
                zeroshot={
                    "RN50": {
                        "ImageNet": 60.32,
                        "Caltech101": 85.92,
                        "OxfordPets": 85.83,
                        "StanfordCars": 55.74,
                        "Flowers102": 66.02,
                        "Food101": 77.32,
                        "FGVCAircraft": 17.1,
                        "SUN397": 58.52,
                        "DTD": 42.2,
                        "EuroSAT": 37.52,
                        "UCF101": 61.35,
                        "Average": 58.89,
                    },
                    "ViT-B/16": {k: v for k, v in CLIP_CROSS_DATASET.items() if k != "Target avg"},
                },
            ),
        ),
    )

    def templates(self):
        return [template_for(self.cfg.DATASET.NAME)]

    def build_model(self):
        self.clip_model = self.load_frozen_clip().to(self.device)
        self.text_features = self.encode_classes(self.dm.dataset.classnames)

    def encode_classes(self, classnames):
        """Mean of the L2-normalised features over templates, re-normalised: (n_cls, embed_dim)."""
        return handwritten_class_features(self.clip_model, classnames, self.templates(), self.prec)

    @torch.no_grad()
    def model_inference(self, image):
        logits = self.logit_scale() * self.image_features(image) @ self.text_features.t()
        bias = self.logit_bias()
        return logits if bias is None else logits + bias

    # The features protocol of coop_toolkit/trainers/learner.py.
    image_conditioned = False
    frozen_image_encoder = True
    learns_nothing = True  # no checkpoint to load; any backbone may stand in for the recorded one

    @torch.no_grad()
    def image_features(self, image, normalize=True):
        with autocast_for(self.prec, self.device):
            return encode_images(self.clip_model.visual, image.to(self.device), clip_dtype(self.clip_model), normalize)

    def class_features(self, image_features=None):
        return self.text_features

    def logit_scale(self):
        return self.clip_model.logit_scale.detach().exp().float()

    def logit_bias(self):
        bias = text_tower(self.clip_model).logit_bias
        return None if bias is None else bias.detach().float()

    def forward_backward(self, batch):
        raise ConfigError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensembling over 7 selected ImageNet templates (+ the dataset's own)."""

    card = ZeroshotCLIP.card

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
