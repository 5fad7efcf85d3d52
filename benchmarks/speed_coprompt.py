"""speed.py's row for CoPrompt: ours against the authors' computation (ShuvenduRoy/CoPrompt, trainers/coprompt.py).

Theirs, written plainly on the same modules and weights: MaPLe's towers as the authors run them
(speed_deep.py: sequence-first, the text at all 77 positions, the class features recomputed at every
training step and evaluation batch), the image adapter mixed 0.1 / 0.9 and the text adapter 0.2 / 0.8 into
the raw features, then normalised; in training the frozen image tower's pass over the second view and
the consistency terms, 1 - mean cosine (eps 1e-7), against it and one description per class. Ours trims
the text and computes the class features once per evaluation. Both take the second view as the image
batch flipped left-right; the adapters run on fp32 features on both sides (theirs are fp16 under PREC fp16).
"""

import random

import torch.nn.functional as F

from benchmarks.cases import Case, speed_cases
from benchmarks.speed_deep import _sgd, authors_image, authors_text_features, build
from coop_toolkit.trainers.coprompt import CoPrompt, coprompt_losses

W = 1.0  # their yaml's TRAINER.W


def _normalised(x):
    return x / x.norm(dim=-1, keepdim=True)


def authors_features(model, images):
    """Their CustomCLIP.forward up to the logits: (logits, image features, text features)."""
    learner = model.prompt_learner
    prompts = learner.all_prompts()
    image = authors_image(model.image_encoder, images, prompts.vision_first, prompts.vision_deep, normalize=False)
    text = authors_text_features(model.text_encoder, prompts.text(), learner.token_ids, prompts.text_deep)
    image, text = image.float(), text.float()
    image = _normalised(0.1 * model.adapter_image(image) + 0.9 * image)
    text = _normalised(0.2 * model.adapter_text(text) + 0.8 * text)
    return model.logit_scale.exp() * image @ text.t(), image, text


def authors_reference(model, images):
    return authors_features(model, images)[0]


def authors_step(model, images, labels, optim):
    logits, image, text = authors_features(model, images)
    frozen_text = model.frozen_text[random.randint(0, model.frozen_text.shape[0] - 1)]
    frozen_image = authors_image(model.image_encoder, images.flip(-1)).float()  # their model_distill.encode_image
    cos_text = F.cosine_similarity(text, frozen_text, dim=1, eps=1e-7)
    cos_image = F.cosine_similarity(image, frozen_image, dim=1, eps=1e-7)
    distill = (1.0 - cos_text.mean()) + (1.0 - cos_image.mean())
    _sgd(F.cross_entropy(logits, labels) + W * distill, optim)


def step(model, images, labels, optim):
    _sgd(sum(coprompt_losses(model(images, images.flip(-1)), labels, W, "cosine").values()), optim)


# Their batch size, 4 (configs/trainers/coprompt.yaml); MaPLe's 100-class row beside it.
speed_cases(
    "CoPrompt",
    Case("CoPrompt", build(CoPrompt), authors_reference, batch=4, classes=100, step=step, reference_step=authors_step),
)
