"""A method that is not a prompt, on the trainer layer alone: CLIP-Adapter's shape (a residual MLP mixed
into the frozen image features before normalising) against hand-written class features.

Not registered here: tests/trainers/test_layer.py registers it, and the plugin tests
(tests/test_plugins.py) register it from outside the package under their own names.
"""

from collections import OrderedDict

import torch
from yacs.config import CfgNode as CN

from coop_toolkit.trainers.handwritten import handwritten_class_features
from coop_toolkit.trainers.learner import LearnerTrainer, encode_images


class ResidualAdapterCLIP(torch.nn.Module):
    def __init__(self, clip_model, classnames, ratio):
        super().__init__()
        width = clip_model.visual.output_dim
        self.image_encoder, self.logit_scale, self.ratio = clip_model.visual, clip_model.logit_scale, ratio
        self.adapter = torch.nn.Sequential(
            torch.nn.Linear(width, width // 4, bias=False), torch.nn.ReLU(), torch.nn.Linear(width // 4, width)
        )
        self.register_buffer("text", handwritten_class_features(clip_model, classnames, ["a photo of a {}."]))

    def image_features(self, image, normalize=True):
        frozen = encode_images(self.image_encoder, image, self.image_encoder.conv1.weight.dtype, normalize=False)
        mixed = self.ratio * self.adapter(frozen) + (1 - self.ratio) * frozen
        return mixed / mixed.norm(dim=-1, keepdim=True) if normalize else mixed

    def forward(self, image):
        return self.logit_scale.exp() * self.image_features(image) @ self.text.t()


class AdapterTrainer(LearnerTrainer):
    """No prompt_learner, no text encoder, no override undoing a prompt default; a subclass sets config_node."""

    @classmethod
    def add_config(cls, cfg):
        if cls.config_node not in cfg.TRAINER:
            cfg.TRAINER[cls.config_node] = CN({"PREC": "fp32", "RATIO": 0.2})  # RATIO: weight of the adapter

    def build_custom_clip(self, classnames, clip_model):
        return ResidualAdapterCLIP(clip_model, classnames, self.opts.RATIO)

    def learned_parameters(self):
        return OrderedDict((f"adapter.{n}", p) for n, p in self.model.adapter.named_parameters())

    @torch.no_grad()
    def image_features(self, image, normalize=True):
        return self.model.image_features(image.to(self.device), normalize)

    def class_features(self, image_features=None):
        return self.model.text
