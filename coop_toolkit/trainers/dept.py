"""DePT on a prompt method: a linear head on channel-wise transformed features, beside the prompt's logits.

Zhang et al., "DePT: Decoupled Prompt Tuning" (CVPR 2024), as Koorye/DePT runs it (trainers/elp_*.py):

* Two FiLM modules (`film_lp_img`, `film_lp_text`: a per-channel scale, ones, and bias, zeros) transform
  the unnormalised image and class text features; a linear head `linear_probe_proj` (embed_dim ->
  n_cls, drawn right after the base model is built) reads them. In training it classifies the
  transformed text features of the batch's labels and the transformed image features, both with the
  labels; the loss is (1 - W) * the base method's cross-entropy + W * the head's (W =
  TRAINER.LINEAR_PROBE.WEIGHT), plus the base method's other terms (KgCoOp's, PromptSRC's) as they are.
* The head exists only where the authors build it: base classes (DATASET.SUBSAMPLE_CLASSES base), or
  all classes of an ImageNet dataset (cross-dataset and domain generalisation sources and targets).
  There the logits are (1 - W) * the prompt's + W * the head's (TEST_TIME_FUSION; else the head's);
  elsewhere (new classes, other target datasets) they are the prompt's alone, and a run that trains
  there (all classes of another dataset, where the authors' code stops on an assertion) is the base
  method's run: nothing of DePT learns.
* The head and FiLMs learn at LR * OPTIM.LR_EXP, the prompt at LR (their trainers/optim.py, with the
  STAGED_LR, NEW_LAYERS ['linear_probe', 'film'] and BASE_LR_MULT 1.0 their train.py sets for every run).
* The whole model is checkpointed under the authors' folder and key names (`PromptLearner/` for CoOp,
  CoCoOp and KgCoOp, the base method's folder otherwise), so their checkpoints evaluate here.

The trainers are the base trainers with `DePT` first in their bases, registered under the authors'
names (ExtrasLinearProbeCoOp, ...); a `features` function gives each base's unnormalised features.
"""

import logging
import os
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.errors import ConfigError
from dasslite.optim.optimizer import build_optimizer
from dasslite.utils.logger import notice_once

from ..datasets.imagenet import read_classnames, subfolders
from ..method_card import MethodCard, Published, base2new_rows, card_of
from .cocoop import CoCoOp
from .coop import CoOp
from .kgcoop import KgCoOp
from .learner import encode_images
from .maple import MaPLe
from .precision import autocast_for
from .promptsrc import PromptSRC
from .text_tower import text_tower

logger = logging.getLogger(__name__)

HEADS = ("film_lp_img", "film_lp_text", "linear_probe_proj")  # the authors' attribute names
NEW_LAYERS = ("linear_probe", "film")  # their OPTIM.NEW_LAYERS: children trained at LR * LR_EXP
HEAD_TYPES = ("linear", "similarity")
SUBSET_DATASETS = ("ImageNetA", "ImageNetR")  # test-only, 200 of ImageNet's classes (their label order)


def add_dept_config(cfg):
    """The authors' keys (their train.py's extend_cfg), added once."""
    if "LINEAR_PROBE" not in cfg.TRAINER:
        cfg.TRAINER.LINEAR_PROBE = CN()
        cfg.TRAINER.LINEAR_PROBE.TYPE = "linear"  # the head: "linear" (a linear classifier) or "similarity"
        cfg.TRAINER.LINEAR_PROBE.WEIGHT = 0.7  # the head's weight in the loss and in the fused logits
        cfg.TRAINER.LINEAR_PROBE.TEST_TIME_FUSION = True  # evaluate with the fused logits (else the head's)
    if "FILM" not in cfg.TRAINER:
        cfg.TRAINER.FILM = CN()
        cfg.TRAINER.FILM.LINEAR_PROBE = True  # channel-wise transforms of the features the head reads
    if "LR_EXP" not in cfg.OPTIM:
        cfg.OPTIM.LR_EXP = 6.5  # DePT: its head and FiLMs learn at LR * LR_EXP (read by DePT trainers only)


def trains_the_head(cfg):
    """The authors' rule: base classes, or all classes of an ImageNet dataset."""
    subsample = cfg.DATASET.SUBSAMPLE_CLASSES
    return subsample == "base" or (subsample == "all" and "ImageNet" in cfg.DATASET.NAME)


class FiLM(nn.Module):
    """x * scale + bias, per channel (scale ones, bias zeros at the start)."""

    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return self.scale.to(x.dtype) * x + self.bias.to(x.dtype)


# ---------------------------------------------------------------- each base model's unnormalised features
def coop_features(model, image):
    """CoOp's / KgCoOp's CustomCLIP: (image (B, D), class text (n_cls, D)), fp32, not normalised (the
    class features computed once per evaluation, as CoOp's)."""
    image_f = encode_images(model.image_encoder, image, model.text_encoder.dtype, normalize=False)
    return image_f, model.text_features(normalize=False).float()


def cocoop_features(model, image):
    """CoCoOp's CustomCLIP: the Meta-Net reads the normalised image features; text is (B, n_cls, D)."""
    image_f = encode_images(model.image_encoder, image, model.text_encoder.dtype, normalize=False)
    return image_f, model.text_features(image_f / image_f.norm(dim=-1, keepdim=True), normalize=False)


def deep_prompt_features(model, image):
    """A DeepPromptCLIP (MaPLe, PromptSRC): the prompted towers' features (the class features computed
    once per evaluation)."""
    prompts = model.prompts()
    return model.image_features(image, prompts, normalize=False).float(), model.text_features(prompts, False).float()


def normalized(x):
    return x / x.norm(dim=-1, keepdim=True)


def similarity_logits(model, image_f, text_f):
    """logit_scale * cos(image, class text); text (B, n_cls, D) scores each image against its own."""
    image_n, text_n = normalized(image_f), normalized(text_f)
    scale = model.logit_scale.exp()
    if text_n.dim() == 3:
        return scale * torch.einsum("bd,bcd->bc", image_n, text_n)
    return (scale * image_n) @ text_n.t()


def head_logits(model, linear_probe, image_f, text_f, label=None):
    """The head's logits and their labels: with `label` (training) over the batch's class text features
    and the image features, without it over the image features (the authors' _forward_logits_linear_probe)."""
    if hasattr(model, "film_lp_img"):
        image_f, text_f = model.film_lp_img(image_f), model.film_lp_text(text_f)
    if linear_probe.TYPE == "similarity":
        return similarity_logits(model, image_f, text_f), label
    if label is None:
        return model.linear_probe_proj(image_f), None
    own = text_f[label] if text_f.dim() == 2 else text_f[torch.arange(len(label), device=label.device), label]
    return model.linear_probe_proj(torch.cat([own, image_f])), torch.cat([label, label])


class Features(nn.Module):
    """features(model, image) as a module's forward (what DDP wraps)."""

    def __init__(self, model, features):
        super().__init__()
        self.model = model
        self.features = features

    def forward(self, image):
        return self.features(self.model, image)


def rows_by_name(directory, classnames):
    """(row of each class in the run.json of the model run in `directory`, its class count), or None when
    it has none; a class named there other than once is an error (ImageNet repeats a few names)."""
    from ..run_record import RUN_FILE, read_run_record  # the run record imports the trainers

    if not directory or not os.path.isfile(os.path.join(directory, RUN_FILE)):
        return None
    source = list(read_run_record(directory)["classnames"])
    unclear = [name for name in classnames if source.count(name) != 1]
    if unclear:
        raise ConfigError(
            f"DePT: the model run {directory} names {unclear[:5]} other than once, so its head's rows cannot be "
            f"matched by name; evaluate with train.py --eval-only and the dataset folder, which matches by wnid"
        )
    return [source.index(name) for name in classnames], len(source)


class DePT:
    """DePT on the trainer after it in the bases: `class ExtrasLinearProbeCoOp(DePT, CoOp)`."""

    features = None  # staticmethod (model, image) -> unnormalised (image, class text) features
    whole_model_ignore_keys = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")

    @classmethod
    def add_config(cls, cfg):
        super().add_config(cfg)
        add_dept_config(cfg)

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        head = cfg.TRAINER.LINEAR_PROBE.TYPE
        if head not in HEAD_TYPES:
            raise ConfigError(f'TRAINER.LINEAR_PROBE.TYPE must be one of {", ".join(HEAD_TYPES)}, got "{head}"')

    @property
    def linear_probe(self):
        return self.cfg.TRAINER.LINEAR_PROBE

    @property
    def features_give_logits(self):
        """Where the head is built, the logits fuse it (affine in the raw image features): class_features()
        then give the prompt's part of the logits alone (the features protocol, learner.py)."""
        return not self.trains_head

    def build_custom_clip(self, classnames, clip_model):
        model = super().build_custom_clip(classnames, clip_model)
        dim = text_tower(clip_model).embed_dim
        self.trains_head = trains_the_head(self.cfg)
        if self.cfg.TRAINER.FILM.LINEAR_PROBE:
            model.film_lp_img, model.film_lp_text = FiLM(dim), FiLM(dim)
        linear = self.trains_head and self.linear_probe.TYPE == "linear"
        # drawn after the base model, as the authors' subclass does
        model.linear_probe_proj = nn.Linear(dim, len(classnames)) if linear else nn.Identity()
        # Where the head is not built (new classes), a checkpoint's head is not read.
        self.checkpoint_ignore_keys = self.whole_model_ignore_keys + (() if linear else ("linear_probe_proj.",))
        return model

    def learned_parameters(self):
        learned = super().learned_parameters()
        for name in HEADS if self.trains_head else ():
            learned.update((f"{name}.{n}", p) for n, p in self.model.get_submodule(name).named_parameters())
        return learned

    def saved_module(self):
        return self.model

    def build_optimizer(self, module):
        """Their staged LR: children named like NEW_LAYERS at LR * LR_EXP, the others at LR."""
        optim = self.cfg.OPTIM
        new, base = [], []
        for name, child in module.named_children():
            group = new if any(layer in name for layer in NEW_LAYERS) else base
            group.extend(p for p in child.parameters() if p.requires_grad)
        groups = [{"params": base, "lr": optim.LR}, {"params": new, "lr": optim.LR * optim.LR_EXP}]
        return build_optimizer([g for g in groups if g["params"]], optim)

    def ddp_module(self):
        """On the head's classes the step reads the towers' raw features (`features`), not the model's
        forward: that is what DDP wraps, so that under torchrun the gradients of every learned parameter
        (the head's too, used after it) are averaged over the processes."""
        return Features(self.model, self.features) if self.trains_head else super().ddp_module()

    # ------------------------------------------------------------ ImageNet-A / -R: the ImageNet head's rows
    def load_model(self, directory, epoch=None):
        """As the base trainer; on ImageNet-A or -R (200 of ImageNet's classes) an ImageNet run's head has a
        row per ImageNet class: the rows of the target's classes are kept, as the authors' load_model
        clips the state dict (their `is_reserves`)."""
        rows = self.source_rows(directory)
        if rows is None:
            return super().load_model(directory, epoch)
        head = self.model.linear_probe_proj
        source = nn.utils.skip_init(nn.Linear, head.in_features, rows[1], device=head.weight.device)
        self.model.linear_probe_proj = source  # the checkpoint's shape (no draw: the seed's stream is kept)
        try:
            loaded = super().load_model(directory, epoch)
        finally:
            self.model.linear_probe_proj = head
        with torch.no_grad():
            head.weight.copy_(source.weight[rows[0]])
            head.bias.copy_(source.bias[rows[0]])
        logger.info(f"DePT head: the rows of {self.cfg.DATASET.NAME}'s {len(rows[0])} classes of {rows[1]}")
        return loaded

    def source_rows(self, directory):
        """(the source head's row of each class of this dataset, in label order; the source's class count)
        on ImageNet-A / -R with a linear head, else None. From the dataset folder's classnames.txt
        (ImageNet's classes in its label order) and class folders, as the authors; built from class names
        alone (predict.py, the API), from the class names of the model run in `directory`."""
        dataset = self.dm.dataset
        if self.cfg.DATASET.NAME not in SUBSET_DATASETS or not isinstance(self.model.linear_probe_proj, nn.Linear):
            return None
        if not hasattr(dataset, "text_file"):
            return rows_by_name(directory, dataset.classnames)
        source = list(read_classnames(dataset.text_file))
        index = {wnid: i for i, wnid in enumerate(source)}
        return [index[wnid] for wnid in subfolders(dataset.image_dir)], len(source)

    # ------------------------------------------------------------ the step
    def base_output(self, image, image_f, text_f, logits):
        """What the base trainer's forward_train returns, from these features (default: the logits)."""
        return logits

    def forward_train(self, image):
        if not self.trains_head:
            notice_once(
                logger,
                f"{type(self).__name__}: no DePT head on all classes of {self.cfg.DATASET.NAME} (the authors build it "
                f"for base classes or ImageNet); this run trains the base method alone",
            )
            return super().forward_train(image)
        image_f, text_f = self.train_model(image)  # self.features, through DDP under torchrun
        logits = similarity_logits(self.model, image_f, text_f)
        base = self.base_output(image, normalized(image_f), normalized(text_f), logits)
        return dict(logits=logits, image=image_f, text=text_f, base=base)

    def logits_of(self, output):
        return output["logits"] if self.trains_head else super().logits_of(output)

    def compute_losses(self, output, label):
        """(1 - W) * the base's first term (its cross-entropy), its other terms, W * the head's cross-entropy."""
        if not self.trains_head:
            return super().compute_losses(output, label)
        weight = self.linear_probe.WEIGHT
        base = super().compute_losses(output["base"], label)
        ce_name, ce = next(iter(base.items()))
        losses = OrderedDict(ce=(1 - weight) * ce)
        losses.update((name, term) for name, term in base.items() if name != ce_name)
        lp_logits, lp_labels = head_logits(self.model, self.linear_probe, output["image"], output["text"], label)
        losses["ce_lp"] = weight * F.cross_entropy(lp_logits.float(), lp_labels)
        return losses

    def model_inference(self, input):
        with autocast_for(self.prec, self.device):
            image_f, text_f = self.features(self.model, input)
            logits = similarity_logits(self.model, image_f, text_f).float()
            if not self.trains_head:
                return logits
            lp_logits = head_logits(self.model, self.linear_probe, image_f, text_f)[0].float()
        if not self.linear_probe.TEST_TIME_FUSION:
            return lp_logits
        weight = self.linear_probe.WEIGHT
        return (1 - weight) * logits + weight * lp_logits


# ---------------------------------------------------------------- the combinations, under the authors' names
DEPT_SOURCE = "DePT paper (CVPR'24), ViT-B/16, 16 shots, base-to-new averages"
DEPT_NO_EXPORT = (
    "on base classes its logits fuse a linear head on FiLM-transformed features with the prompt's, which no "
    "head of class features can reproduce"
)


def dept_card(base, config, published=None):
    """The combination's card: its yaml, its published row, export refused (for the base's reason too).
    No base2new_configs yet (speed rows on CoOp and CoCoOp: benchmarks/speed_tcp_dept.py; the time
    projection would need the configs the authors' runner picks per dataset, not checked)."""
    rows = (Published(published[0], source=DEPT_SOURCE, base2new=base2new_rows(published[1])),) if published else ()
    reason = "; and ".join(r for r in (card_of(base).no_export_reason, DEPT_NO_EXPORT) if r)
    return MethodCard(reference_config=config, published=rows, export=None, no_export_reason=reason)


@TRAINER_REGISTRY.register(name="ExtrasLinearProbeCoOp")
class ExtrasLinearProbeCoOp(DePT, CoOp):
    model_name = "PromptLearner"
    features = staticmethod(coop_features)
    card = dept_card(CoOp, "configs/trainers/ExtrasLinearProbeCoOp/vit_b16_ep10_bs4_lr35.yaml")


@TRAINER_REGISTRY.register(name="ExtrasLinearProbeCoCoOp")
class ExtrasLinearProbeCoCoOp(DePT, CoCoOp):
    model_name = "PromptLearner"
    features = staticmethod(cocoop_features)
    card = dept_card(
        CoCoOp,
        "configs/trainers/ExtrasLinearProbeCoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
        ("CoCoOp+DePT", (83.80, 72.89, 77.97)),
    )


@TRAINER_REGISTRY.register(name="ExtrasLinearProbeKgCoOp")
class ExtrasLinearProbeKgCoOp(DePT, KgCoOp):
    model_name = "PromptLearner"
    features = staticmethod(coop_features)
    card = dept_card(
        KgCoOp,
        "configs/trainers/ExtrasLinearProbeKgCoOp/vit_b16_ep10_ctxv1_bs4_lr35.yaml",
        ("KgCoOp+DePT", (83.62, 75.04, 79.10)),
    )

    def base_output(self, image, image_f, text_f, logits):
        return logits, image_f, text_f  # KgCoOp's forward(details=True)


@TRAINER_REGISTRY.register(name="ExtrasLinearProbeMaPLe")
class ExtrasLinearProbeMaPLe(DePT, MaPLe):
    features = staticmethod(deep_prompt_features)
    card = dept_card(MaPLe, "configs/trainers/ExtrasLinearProbeMaPLe/vit_b16_c2_ep10_batch4_2ctx.yaml")


@TRAINER_REGISTRY.register(name="ExtrasLinearProbePromptSRC")
class ExtrasLinearProbePromptSRC(DePT, PromptSRC):
    features = staticmethod(deep_prompt_features)
    whole_model_ignore_keys = PromptSRC.checkpoint_ignore_keys
    card = dept_card(
        PromptSRC,
        "configs/trainers/ExtrasLinearProbePromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
        ("PromptSRC+DePT", (85.19, 76.17, 80.43)),
    )

    def base_output(self, image, image_f, text_f, logits):
        return self.model.training_output(image, image_f, text_f, logits)  # PromptSRC's forward(details=True)
