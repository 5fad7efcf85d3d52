"""Zero-shot CLIP baselines: one hand-written template per dataset, or an ensemble of templates."""

import logging

import torch

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.engine.trainer import TrainerX

from .clip_backbone import TextEncoder, check_input_size, clip_dtype, load_clip, tokenize
from .prompt_trainer import autocast_for, encode_images, resolve_precision
from .templates import ensemble_templates, template_for

logger = logging.getLogger(__name__)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    """Classifies with the dataset's template; nothing is trained (run with --eval-only)."""

    def templates(self):
        return [template_for(self.cfg.DATASET.NAME)]

    def build_model(self):
        cfg = self.cfg
        self.prec = resolve_precision(cfg.TRAINER.COOP.PREC, self.device, "TRAINER.COOP.PREC")
        logger.info(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        self.clip_model = load_clip(cfg.MODEL.BACKBONE.NAME, precision=self.prec).to(self.device)
        check_input_size(cfg.INPUT.SIZE, self.clip_model)
        names = [name.replace("_", " ") for name in self.dm.dataset.classnames]
        self.text_features = self.encode_classes(names)

    @torch.no_grad()
    def encode_classes(self, names):
        """Mean of the L2-normalised features over templates, re-normalised: (n_cls, embed_dim)."""
        encoder = TextEncoder(self.clip_model)
        embedding = self.clip_model.token_embedding
        mean = 0
        for template in self.templates():
            prompts = [template.format(name) for name in names]
            logger.info(f"Prompts: {prompts}")
            token_ids = tokenize(prompts).to(self.device)
            with autocast_for(self.prec, self.device):
                features = encoder(embedding(token_ids), token_ids).float()
            mean = mean + features / features.norm(dim=-1, keepdim=True)
        return mean / mean.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def model_inference(self, image):
        with autocast_for(self.prec, self.device):
            features = encode_images(self.clip_model.visual, image.to(self.device), clip_dtype(self.clip_model))
        return self.clip_model.logit_scale.exp().float() * features @ self.text_features.t()

    def forward_backward(self, batch):
        raise RuntimeError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensembling over 7 selected ImageNet templates (+ the dataset's own)."""

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
