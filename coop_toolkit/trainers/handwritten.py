"""The frozen CLIP's class text features for hand-written prompts ("a photo of a {}."), shared by the
trainers that need them: zero-shot classification, KgCoOp's knowledge-guided term, ProGrad's teacher.

They depend only on the CLIP weights, the templates and the class names, so they are computed once per
(CLIP, templates, class list) and kept with the CLIP model, not recomputed at every step.
"""

import logging
import weakref

import torch

from .clip_backbone import TextEncoder
from .precision import autocast_for

logger = logging.getLogger(__name__)

# CLIP model -> {(templates, names, prec, device): features}; entries go away with the model.
_CACHE = weakref.WeakKeyDictionary()


@torch.no_grad()
def handwritten_class_features(clip_model, classnames, templates, prec="fp32"):
    """(n_cls, embed_dim) fp32: per template the L2-normalised features of "<template with the class>",
    averaged over the templates and re-normalised (one template: just its normalised features).

    `classnames` are written with spaces for underscores, as every prompt learner writes them.
    """
    names = tuple(name.replace("_", " ") for name in classnames)
    key = (tuple(templates), names, prec, str(next(clip_model.parameters()).device))
    per_model = _CACHE.setdefault(clip_model, {})
    if key not in per_model:
        per_model[key] = _encode(clip_model, names, templates, prec)
    return per_model[key]


def _encode(clip_model, names, templates, prec):
    encoder = TextEncoder(clip_model)
    tower = encoder.tower
    device = tower.token_embedding.weight.device
    mean = 0
    for template in templates:
        prompts = [template.format(name) for name in names]
        logger.info(f"Prompts: {prompts}")
        token_ids = tower.tokenize(prompts).to(device)
        with autocast_for(prec, device):
            features = encoder(tower.embed(token_ids), token_ids).float()
        mean = mean + features / features.norm(dim=-1, keepdim=True)
    return mean / mean.norm(dim=-1, keepdim=True)


def features_from_a_second_clip(backbone, classnames, templates, precision, device):
    """handwritten_class_features of a freshly loaded CLIP, which is then dropped.

    KgCoOp's and ProGrad's authors load CLIP a second time for these features; loading it here too
    draws from the global RNG exactly as they do, so a seed gives their initial prompts and batch order,
    and the features are computed in the precision they used.
    """
    from .clip_backbone import load_clip

    clip_model = load_clip(backbone, precision=precision, device=device)
    return handwritten_class_features(clip_model, classnames, templates, precision)
