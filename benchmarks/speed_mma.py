"""speed.py's row for MMA (MultiModalAdapter): ours against the authors' computation.

The authors' computation (ZjjConan/Multi-Modal-Adapter: trainers/mmadapter.py, clip/model.py), written
plainly on the same modules and weights: both towers run sequence-first (L, N, D) as OpenAI's CLIP in
their code, the text tower at all 77 positions; each adapted block computes its term from its input
through their gradient_scale_layer (identity forward, gradient times scale / 1 / scale) and adds it
to the block's output; the class features are encoded at every training step and once per evaluation
(their text_features_for_inference). Ours trims the text to the longest end-of-text position.
Layers 5..12, DIM 32, scale 0.001 (their yamls).
"""

import os

import torch
import torch.nn.functional as F

from benchmarks.cases import Case, speed_cases
from benchmarks.speed_deep import built_sequence_first
from coop_toolkit import trainers
from coop_toolkit.trainers.mma import MMACLIP, GradientScale
from dasslite.config import get_cfg_default

YAML = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "configs",
    "trainers",
    "MultiModalAdapter",
    "vit_b16_ep5.yaml",
)


def build_mma(clip_model, classnames):
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    cfg.merge_from_file(YAML)
    model = MMACLIP(cfg.TRAINER.MMADAPTER, classnames, clip_model)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("adapter_learner."))
    model.reference_text = None  # (adapter versions, class features) of their evaluation cache
    return model


def _their_linear(x, layer):
    """Their adapters are modules of CLIP's dtype (`.half()` beside an fp16 CLIP)."""
    return F.linear(x, layer.weight.to(x.dtype), layer.bias.to(x.dtype))


def _their_term(x, block, own, shared, scale):
    """ModifiedResidualAttentionBlock's y."""
    y = block.ln_1(GradientScale.apply(x, scale))
    y = F.relu(_their_linear(y, own.down[0]))
    y = F.relu(_their_linear(y, shared[0]))
    return GradientScale.apply(_their_linear(y, own.up) * scale, 1.0 / scale)


def _their_blocks(transformer, x, adapters, shared, scale, mask=None):
    x = x.permute(1, 0, 2)  # NLD -> LND
    with built_sequence_first(transformer):
        for i, block in enumerate(transformer.resblocks, start=1):
            y = _their_term(x, block, adapters[i], shared[i], scale) if adapters[i] is not None else 0
            x = block(x, attn_mask=mask) + y
    return x.permute(1, 0, 2)


def _their_text(model):
    learner, enc = model.adapter_learner, model.text_encoder
    x = learner.token_embedding.to(enc.dtype) + enc.positional_embedding.to(enc.dtype)
    mask = torch.full((x.shape[1], x.shape[1]), float("-inf"), device=x.device).triu_(1)
    x = _their_blocks(enc.transformer, x, learner.text_adapter, learner.shared_adapter, learner.adapter_scale, mask)
    x = enc.ln_final(x)
    return x[torch.arange(x.shape[0]), learner.tokenized_prompts.argmax(-1)] @ enc.text_projection


def _their_image(model, images):
    learner, visual = model.adapter_learner, model.image_encoder
    x = visual.conv1(images.to(visual.conv1.weight.dtype)).flatten(2).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
    x = visual.ln_pre(x + visual.positional_embedding.to(x.dtype))
    x = _their_blocks(visual.transformer, x, learner.visual_adapter, learner.shared_adapter, learner.adapter_scale)
    return visual.ln_post(x[:, 0]) @ visual.proj


def mma_reference(model, images):
    """Their CustomCLIP.forward: the class features at every training step; in eval once (here once per
    state of the adapters, as one evaluation over a test set)."""
    learner = model.adapter_learner
    if learner.training:
        text = _their_text(model)
    else:
        key = tuple(p._version for p in learner.parameters())
        if model.reference_text is None or model.reference_text[0] != key:
            model.reference_text = (key, _their_text(model))
        text = model.reference_text[1]
    image = F.normalize(_their_image(model, images), dim=-1)
    return model.logit_scale.exp() * image @ F.normalize(text, dim=-1).t()


# Their batch (vit_b16_ep5.yaml: 16), 100 classes.
speed_cases("MultiModalAdapter", Case("MMA", build_mma, mma_reference, batch=16, classes=100))
