"""speed.py's rows for TCP and DePT (on CoOp and on CoCoOp): ours against the authors' computation.

The authors' computations, written plainly on the same modules and weights (speed_deep's text tower:
sequence-first blocks over all 77 positions):
- TCP (htyao89/Textual-based_Class-aware_prompt_tuning, trainers/tcp.py and clip_text/model.py): the
  fp16 Meta-Net's class tokens, mixed in as 1.0 * tokens + 0.0 * the positions they replace before text
  block 8, the class text features recomputed in every forward (training and evaluation alike); loss
  cross-entropy + 8.0 * (1 - mean cos(text, hand-written)).
- DePT (Koorye/DePT, trainers/elp_coop.py, elp_cocoop.py): the base method's unnormalised features at
  77 tokens in every forward (CoCoOp: one text pass per image), the similarity logits, the FiLM-ed
  features' linear head; loss (1 - W) CE + W CE of the head over the batch's class text features and
  the image features; evaluation (1 - W) similarity + W head.
Ours trims the text to the longest end-of-text position, computes TCP's class features once per
evaluation, and runs CoCoOp's prompts of the whole batch in one chunked pass. Both sides run the
trainer's own evaluation (`model_inference`) and losses (`compute_losses`), through `TrainerModel`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.cases import Case, speed_cases
from benchmarks.speed_deep import authors_text_features
from coop_toolkit import trainers
from coop_toolkit.trainers.dept import ExtrasLinearProbeCoCoOp, ExtrasLinearProbeCoOp
from coop_toolkit.trainers.handwritten import handwritten_class_features
from coop_toolkit.trainers.tcp import CLASS_LAYER, KNOWLEDGE_WEIGHT, TCP, TCPCLIP, TCPPromptLearner
from coop_toolkit.trainers.templates import DEFAULT_TEMPLATE
from dasslite.config import get_cfg_default, merge_from_file_checked

TCP_CONFIG = "configs/trainers/TCP/vit_b16_ep100_ctxv1.yaml"
DEPT_CONFIGS = {
    ExtrasLinearProbeCoOp: "configs/trainers/ExtrasLinearProbeCoOp/vit_b16_ep10_bs4_lr35.yaml",
    ExtrasLinearProbeCoCoOp: "configs/trainers/ExtrasLinearProbeCoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
}


class TrainerModel(nn.Module):
    """A trainer's evaluation (`model_inference`) as a module's forward, over the trainer's model."""

    def __init__(self, trainer):
        super().__init__()
        self.model = trainer.model
        self.trainer = trainer

    def forward(self, images):
        return self.trainer.model_inference(images)


def trainer_model(trainer_class, config_file, make_model, clip_model):
    """The trainer (no data, no engine) on `config_file` with base classes, its model from
    make_model(trainer), the learned parameters alone requiring grad."""
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    merge_from_file_checked(cfg, config_file)
    cfg.DATASET.SUBSAMPLE_CLASSES = "base"  # DePT's head exists on base classes
    cfg.TRAINER[trainer_class.config_node].PREC = "fp32"  # the benchmark's --prec runs the CLIP it is given
    trainer = trainer_class.__new__(trainer_class)
    trainer.cfg, trainer.device, trainer.prec = cfg, clip_model.logit_scale.device, "fp32"
    trainer.model = make_model(trainer)
    trainer.train_model = trainer.ddp_module()  # what its step calls (no DDP here)
    learned = set(trainer.learned_parameters())
    for name, p in trainer.model.named_parameters():
        p.requires_grad_(name in learned)
    return TrainerModel(trainer)


def trainer_step(ours, images, labels, optim):
    """Ours: the trainer's forward_train and loss terms, one SGD step."""
    trainer = ours.trainer
    sgd(sum(trainer.compute_losses(trainer.forward_train(images), labels).values()), optim)


def sgd(loss, optim):
    optim.zero_grad()
    loss.backward()
    optim.step()


def image_features(model, images):
    """The frozen image tower's unnormalised features (the same computation on both sides)."""
    return model.image_encoder(images.to(model.text_encoder.dtype)).float()


def normalized(x):
    return x / x.norm(dim=-1, keepdim=True)


# ---- TCP ----------------------------------------------------------------------------------------------


def build_tcp(clip_model, classnames):
    def make(trainer):
        # the hand-written features from the same CLIP (theirs: a second copy of it)
        knowledge = lambda: handwritten_class_features(clip_model, classnames, [DEFAULT_TEMPLATE])  # noqa: E731
        learner = lambda *args: TCPPromptLearner(*args, knowledge=knowledge)  # noqa: E731
        return TCPCLIP(trainer.cfg, classnames, clip_model, learner)

    return trainer_model(TCP, TCP_CONFIG, make, clip_model)


def tcp_text(model):
    """Theirs: the class tokens put in before text block 8 as 1.0 * tokens + 0.0 * what they replace, 77
    positions. The fp16 Meta-Net is the learner's own (the same computation as theirs `.half()`)."""
    learner = model.prompt_learner
    tokens = learner.class_tokens().permute(1, 0, 2)  # (4, n_cls, width)
    at = min(CLASS_LAYER, len(model.text_encoder.transformer.resblocks) - 1)  # as ours, for a tiny CLIP

    def replace(k, x):
        if k != at:
            return x
        n = tokens.shape[0]
        return torch.cat([x[:1], 1.0 * tokens + 0.0 * x[1 : 1 + n], x[1 + n :]])

    text = authors_text_features(model.text_encoder, learner(), learner.token_ids, replace=replace)
    return normalized(text.float())


def tcp_logits(model, images):
    text = tcp_text(model)
    logits = model.logit_scale.exp().detach() * normalized(image_features(model, images)).detach() @ text.t()
    return logits, text


def tcp_reference(ours, images):
    return tcp_logits(ours.model, images)[0]


def tcp_reference_step(ours, images, labels, optim):
    """Theirs: cross-entropy + 8.0 * (1 - mean cos(text, hand-written))."""
    logits, text = tcp_logits(ours.model, images)
    handwritten = ours.model.prompt_learner.knowledge.float()
    score = 1.0 - torch.nn.CosineSimilarity(dim=1, eps=1e-07)(text, normalized(handwritten)).mean()
    sgd(F.cross_entropy(logits, labels) + KNOWLEDGE_WEIGHT * score, optim)


# ---- DePT ---------------------------------------------------------------------------------------------


def build_dept(trainer_class):
    def make(clip_model, classnames):
        config = DEPT_CONFIGS[trainer_class]
        return trainer_model(trainer_class, config, lambda t: t.build_custom_clip(classnames, clip_model), clip_model)

    return make


def coop_text(model, image):
    """CoOp's class text features, unnormalised, 77 positions: (n_cls, D)."""
    learner = model.prompt_learner
    return authors_text_features(model.text_encoder, learner(), learner.token_ids).float()


def cocoop_text(model, image):
    """CoCoOp's: one 77-position pass over all classes per image, the Meta-Net reading the normalised
    image features: (B, n_cls, D)."""
    learner = model.prompt_learner
    per_image = [learner(f.unsqueeze(0))[0] for f in normalized(image)]
    return torch.stack([authors_text_features(model.text_encoder, p, learner.token_ids).float() for p in per_image])


def dept_logits(ours, images, text_of, labels=None):
    """Theirs: (similarity logits, head logits, head labels) from the unnormalised features."""
    model = ours.model
    assert ours.trainer.linear_probe.TYPE == "linear"  # the authors' default head
    image = image_features(model, images)
    text = text_of(model, image)
    scale = model.logit_scale.exp()
    if text.dim() == 2:
        logits = scale * normalized(image) @ normalized(text).t()
    else:
        logits = torch.stack([scale * f @ normalized(t).t() for f, t in zip(normalized(image), text)])
    text, image = model.film_lp_text(text), model.film_lp_img(image)
    if labels is None:
        return logits, model.linear_probe_proj(image), None
    own = text[labels] if text.dim() == 2 else torch.stack([t[label] for t, label in zip(text, labels)])
    return logits, model.linear_probe_proj(torch.cat([own, image])), torch.cat([labels, labels])


def dept_reference(text_of):
    def reference(ours, images):
        logits, head, _ = dept_logits(ours, images, text_of)
        weight = ours.trainer.linear_probe.WEIGHT
        return (1 - weight) * logits + weight * head

    return reference


def dept_reference_step(text_of):
    def step(ours, images, labels, optim):
        logits, head, head_labels = dept_logits(ours, images, text_of, labels)
        weight = ours.trainer.linear_probe.WEIGHT
        sgd((1 - weight) * F.cross_entropy(logits, labels) + weight * F.cross_entropy(head, head_labels), optim)

    return step


def dept_case(trainer_class, text_of, batch, classes):
    steps = dict(step=trainer_step, reference_step=dept_reference_step(text_of))
    return Case(trainer_class.__name__, build_dept(trainer_class), dept_reference(text_of), batch, classes, **steps)


# The authors' batches: TCP 32, DePT on CoOp 4 (its yaml), on CoCoOp 1.
speed_cases("TCP", Case("TCP", build_tcp, tcp_reference, 32, 100, step=trainer_step, reference_step=tcp_reference_step))
speed_cases("ExtrasLinearProbeCoOp", dept_case(ExtrasLinearProbeCoOp, coop_text, batch=4, classes=100))
speed_cases("ExtrasLinearProbeCoCoOp", dept_case(ExtrasLinearProbeCoCoOp, cocoop_text, batch=1, classes=50))
