"""PromptSRC: IVLP's prompts regulated toward the frozen CLIP, and averaged over epochs with Gaussian weights.

Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation without Forgetting" (ICCV 2023).
Config node TRAINER.PROMPTSRC and checkpoint folder VLPromptLearner/ as in the authors' code.

* Loss: cross-entropy + TEXT_LOSS_WEIGHT * L1(prompted text features, frozen template-ensemble
  features) + IMAGE_LOSS_WEIGHT * L1(prompted image features, frozen image features) + KL(frozen
  logits || prompted logits) summed and divided by the number of logits, all features normalised.
* The frozen image features come from the same image tower run without prompts (the authors keep a
  second copy of it, prompt_learner.ZS_image_encoder, which loading skips).
* Gaussian prompt aggregation (GPA): after epoch e (1-based) the learned parameters, weighted by
  N(e; GPA_MEAN, GPA_STD) normalised over the epochs, are added to a running sum, which replaces them
  after the last epoch (so the final checkpoint and test use it). The sum is hook state saved in every
  checkpoint, so a resumed run equals an uninterrupted one. The authors aggregate the frozen weights
  too; those stay unchanged here (theirs change by fp16 rounding only).
"""

import numpy as np
import torch
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.engine.hooks import HookBase, LRSchedulerHook

from ..method_card import CROSS_DATASET_COLUMNS, DG_COLUMNS, MethodCard, Published, base2new_rows, columns
from .clip_backbone import TextEncoder
from .deep_prompt import DEEP_EXPORT, DEEP_SOURCE, DeepPromptCLIP, DeepPromptTrainer
from .ivlp import add_vl_config, build_vl_clip
from .precision import autocast_for
from .prompted_encoders import prompted_image_features
from .templates import PROMPTSRC_TEMPLATES

ZERO_SHOT_KEYS = ("prompt_learner.ZS_image_encoder.",)  # the authors' frozen image tower copy


@torch.no_grad()
def template_ensemble(clip_model, classnames, templates, chunk_size=1024):
    """(n_cls, embed_dim) fp32: the frozen CLIP's text features averaged over templates, not normalised
    (the authors average raw features and normalise at use)."""
    encoder = TextEncoder(clip_model)
    tower = encoder.tower
    device = tower.token_embedding.weight.device
    names = [name.replace("_", " ") for name in classnames]
    total = 0
    for template in templates:
        ids = tower.tokenize([template.format(name) for name in names]).to(device)
        total = total + encoder(tower.embed(ids), ids, chunk_size=chunk_size).float()
    return total / len(templates)


def gpa_weights(mean, std, epochs):
    """The Gaussian density at epochs 1..epochs, normalised to sum 1 (float64, as the authors compute it)."""
    x = np.arange(1, epochs + 1, dtype=np.float64)
    gauss = (1 / (std * np.sqrt(2 * np.pi))) * np.exp(-0.5 * ((x - mean) / std) ** 2)
    return gauss / sum(gauss)


def promptsrc_losses(output, label, text_weight, image_weight):
    """The loss terms of PromptSRCCLIP's training output (module docstring)."""
    logits = output["logits"]
    kl = F.kl_div(
        F.log_softmax(logits, dim=1), F.log_softmax(output["zs_logits"], dim=1), reduction="sum", log_target=True
    )
    return dict(
        ce=F.cross_entropy(logits, label),
        scl_text=F.l1_loss(output["text"], output["zs_text"]) * text_weight,
        scl_image=F.l1_loss(output["image"], output["zs_image"]) * image_weight,
        scl_logits=kl / logits.numel(),
    )


class PromptSRCCLIP(DeepPromptCLIP):
    """IVLP's model; with details=True (training) it also returns the frozen model's features and logits."""

    def set_fixed_text(self, features):
        self.register_buffer("fixed_embeddings", features, persistent=False)

    def forward(self, image, details=False):
        image_f, text_f, logits = self.features_and_logits(image)
        return self.training_output(image, image_f, text_f, logits) if details else logits

    def training_output(self, image, image_f, text_f, logits):
        """What the loss reads: the prompted features and logits beside the frozen model's."""
        fixed = self.fixed_embeddings / self.fixed_embeddings.norm(dim=-1, keepdim=True)
        with torch.no_grad():
            zs_image = prompted_image_features(self.image_encoder, image).float()
            zs_image = zs_image / zs_image.norm(dim=-1, keepdim=True)
            zs_logits = (self.logit_scale.exp() * zs_image) @ fixed.t()
        return dict(logits=logits, text=text_f, image=image_f, zs_text=fixed, zs_image=zs_image, zs_logits=zs_logits)


class GaussianPromptAggregation(HookBase):
    """GPA as a hook: runs after the LR step of each epoch, before best-val selection and checkpoints."""

    def __init__(self, weights, parameters):
        self.weights, self.parameters, self.sums = weights, parameters, None

    @torch.no_grad()
    def after_epoch(self):
        epoch = self.trainer.epoch
        weight = self.weights[epoch]
        weighted = {name: p.detach() * weight for name, p in self.parameters.items()}
        if self.sums is not None:
            weighted = {name: weighted[name] + self.sums[name] for name in weighted}
        self.sums = weighted
        if epoch + 1 == len(self.weights):
            for name, p in self.parameters.items():
                p.copy_(self.sums[name])

    def state_dict(self):
        return {} if self.sums is None else {"sums": {k: v.cpu() for k, v in self.sums.items()}}

    def load_state_dict(self, state):
        sums = state.get("sums")
        self.sums = None if sums is None else {k: v.to(self.parameters[k].device) for k, v in sums.items()}


@TRAINER_REGISTRY.register()
class PromptSRC(DeepPromptTrainer):
    config_node = "PROMPTSRC"
    model_name = "VLPromptLearner"
    card = MethodCard(
        reference_config="configs/trainers/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
        base2new_configs=("vit_b16_c2_ep20_batch4_4+4ctx", "vit_b16_c2_ep20_batch4_4+4ctx"),
        published=(
            Published(
                "PromptSRC",
                source=DEEP_SOURCE,
                base2new=base2new_rows(
                    (84.26, 76.1, 79.97),  # Average
                    (77.6, 70.73, 74.01),  # ImageNet
                    (98.1, 94.03, 96.02),  # Caltech101
                    (95.33, 97.3, 96.3),  # OxfordPets
                    (78.27, 74.97, 76.58),  # StanfordCars
                    (98.07, 76.5, 85.95),  # Flowers102
                    (90.67, 91.53, 91.1),  # Food101
                    (42.73, 37.87, 40.15),  # FGVCAircraft
                    (82.67, 78.47, 80.52),  # SUN397
                    (83.37, 62.97, 71.75),  # DTD
                    (92.9, 73.9, 82.32),  # EuroSAT
                    (87.1, 78.8, 82.74),  # UCF101
                ),
                cross_dataset=columns(
                    CROSS_DATASET_COLUMNS,
                    (71.27, 93.6, 90.25, 65.7, 70.25, 86.15, 23.9, 67.1, 46.87, 45.5, 68.75, 65.81),
                ),
                domain_generalization=columns(DG_COLUMNS, (71.27, 64.35, 49.55, 50.9, 77.8, 60.65)),
            ),
        ),
        **DEEP_EXPORT,
    )
    needs_vision_prompts = False
    checkpoint_ignore_keys = DeepPromptTrainer.checkpoint_ignore_keys + ZERO_SHOT_KEYS

    @classmethod
    def add_config(cls, cfg):
        if "PROMPTSRC" in cfg.TRAINER:
            return
        node = cfg.TRAINER.PROMPTSRC = CN()
        add_vl_config(node, n_ctx=4, depth=9)
        node.TEXT_LOSS_WEIGHT = 25  # weight of the L1 term toward the frozen text features
        node.IMAGE_LOSS_WEIGHT = 10  # weight of the L1 term toward the frozen image features
        node.GPA_MEAN = 15  # epoch (1-based) where the Gaussian aggregation weight peaks
        node.GPA_STD = 1  # its spread in epochs

    def build_custom_clip(self, classnames, clip_model):
        model = build_vl_clip(self, self.opts, self.config_node, classnames, clip_model, PromptSRCCLIP)
        # The authors build two more CLIPs (their frozen text and image towers): same draws, so what
        # follows (the data order) starts from the same generator state.
        for _ in range(2):
            self.replay_authors_init(clip_model)
        clip_model.to(self.device)
        with autocast_for(self.prec, self.device):
            model.set_fixed_text(template_ensemble(clip_model, classnames, PROMPTSRC_TEMPLATES))
        return model

    def build_hooks(self):
        hooks = super().build_hooks()
        opts = self.opts
        weights = gpa_weights(opts.GPA_MEAN, opts.GPA_STD, self.cfg.OPTIM.MAX_EPOCH)
        gpa = GaussianPromptAggregation(weights, self.learned_parameters())
        at = next(i for i, h in enumerate(hooks) if isinstance(h, LRSchedulerHook)) + 1
        return hooks[:at] + [gpa] + hooks[at:]

    def forward_train(self, image):
        return self.train_model(image, details=True)

    def logits_of(self, output):
        return output["logits"]

    def compute_losses(self, output, label):
        return promptsrc_losses(output, label, self.opts.TEXT_LOSS_WEIGHT, self.opts.IMAGE_LOSS_WEIGHT)
