"""Zero-shot CLIP baselines: one hand-written template per dataset, or an ensemble of templates."""

import logging

import torch

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError

from .clip_backbone import clip_dtype
from .coop import CoOp
from .handwritten import handwritten_class_features
from .precision import autocast_for
from .prompt_trainer import ClipTrainer, encode_images
from .templates import ensemble_templates, template_for

logger = logging.getLogger(__name__)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipTrainer):
    """Classifies with the dataset's template; nothing is trained (run with --eval-only).

    Its node is CoOp's (TRAINER.COOP, of which it reads PREC), as in the original: it runs with
    CoOp's yamls.
    """

    config_node = "COOP"
    add_config = CoOp.add_config

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
        return self.logit_scale() * self.image_features(image) @ self.text_features.t()

    # The features API of coop_toolkit/trainers/prompt_trainer.py: PromptTrainer.
    image_conditioned = False
    frozen_image_encoder = True
    learns_nothing = True  # no checkpoint to load; any backbone may stand in for the recorded one

    @torch.no_grad()
    def image_features(self, image):
        with autocast_for(self.prec, self.device):
            return encode_images(self.clip_model.visual, image.to(self.device), clip_dtype(self.clip_model))

    def class_features(self, image_features=None):
        return self.text_features

    def logit_scale(self):
        return self.clip_model.logit_scale.detach().exp().float()

    def forward_backward(self, batch):
        raise ConfigError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensembling over 7 selected ImageNet templates (+ the dataset's own)."""

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
