"""What MaPLe, IVLP, VPT and PromptSRC share: the prompt learner, the CLIP with prompted towers, the trainer.

The trainers differ only in where their learned tokens come from (`DeepPromptCLIP.prompts`) and, for
PromptSRC, in the loss and the end of training. Checkpoints hold the whole model's state dict under
the authors' key names (their checkpoints hold frozen CLIP too), so a checkpoint trained by their
code evaluates here and ours loads in theirs.
"""

import logging
import re
from collections import OrderedDict, namedtuple

import torch
import torch.nn as nn

from dasslite.errors import ConfigError
from dasslite.utils.logger import notice_once

from ..method_card import CLASSIFIER_HEAD
from .authors_init import is_openai_vit, keeping_the_generator, replay_clip_construction
from .clip_backbone import draw_dtype, image_dtype
from .learner import LearnerTrainer, encode_images
from .precision import autocast_for
from .prompt_trainer import context_embedding, register_class_prompts
from .prompted_encoders import (
    PromptedTextEncoder,
    check_depth,
    check_vision_prompts,
    prompted_image_features,
    vision_blocks,
    vision_width,
)
from .text_tower import text_tower

logger = logging.getLogger(__name__)

# Where the deep-prompting methods' published base-to-new rows come from (their cards).
DEEP_SOURCE = (
    "MaPLe README (MaPLe, VPT, language prompting, IVLP 2+2) and PromptSRC README (PromptSRC, IVLP 4+4), "
    "ViT-B/16, 16 shots; per-dataset rows as reprinted by later papers"
)
# How they export: a classifier head when no image-side prompt is learned (language-only IVLP), else refused.
DEEP_EXPORT = dict(
    export=CLASSIFIER_HEAD,
    no_export_reason="learns prompts inside the image encoder, so open_clip's frozen image encoder would not "
    "give this run's image features and no exported head could reproduce its logits",
)

# What the towers receive: text() -> the text prompt embeddings (n_cls, L, width) with the first layer's
# context in place (called only when the class features are not cached), the text deep prompts, the
# image tower's appended prompt and its deep prompts.
Prompts = namedtuple("Prompts", "text text_deep vision_first vision_deep")

# Our name of a prompt tensor -> the authors' (their prompts are parameters of their CLIP's modules).
_AUTHORS_NAMES = (
    (r"vision_prompts\.first", lambda m: "image_encoder.VPT"),
    (r"vision_prompts\.deep\.(\d+)", lambda m: f"image_encoder.transformer.resblocks.{int(m[1]) + 1}.VPT_shallow"),
    (r"text_prompts\.deep\.(\d+)", lambda m: f"text_encoder.transformer.resblocks.{int(m[1]) + 1}.VPT_shallow"),
)
_OUR_NAMES = (
    (r"image_encoder\.VPT", lambda m: "vision_prompts.first"),
    (r"image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow", lambda m: f"vision_prompts.deep.{int(m[1]) - 1}"),
    (r"text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow", lambda m: f"text_prompts.deep.{int(m[1]) - 1}"),
)


def _rename(state_dict, prefix, rules):
    for key in [k for k in state_dict if k.startswith(prefix)]:
        for pattern, name in rules:
            match = re.fullmatch(pattern, key[len(prefix) :])
            if match:
                state_dict[prefix + name(match)] = state_dict.pop(key)
                break


def authors_fp16(prompt):
    """A tower's prompt as the authors' clip/model.py puts it in: rounded to fp16 whatever PREC says.

    Their blocks (ResidualAttentionBlock_IVLP / _MaPLe) and image towers call `.half()` on the deep
    prompts of both towers and on the image tower's first prompt before the concatenation, which then
    promotes to the stream's dtype: with CLIP in fp32 (PREC fp32 or amp, or fp16 off CUDA) the values,
    and the gradients coming back, are fp16-rounded. The first text context (the prompt learner's ctx)
    is not rounded. Stays fp32 here; the towers cast to their stream's dtype.
    """
    return prompt.half().float()


def first_context(clip_model, n_ctx, ctx_init, key):
    """The authors' context init: the first n_ctx token embeddings of CTX_INIT when it is given and
    n_ctx <= 4 (the prompt text keeps all of CTX_INIT, so with N_CTX 2 and "a photo of a" the words
    "of a" stay fixed after the context); otherwise N(0, 0.02^2) drawn in CLIP's dtype, prefix "X X..".
    Returns (ctx fp32, prompt prefix text)."""
    tower = text_tower(clip_model)
    if ctx_init and n_ctx <= 4:
        text = ctx_init.replace("_", " ")
        n_tokens = tower.count_tokens(text)
        if n_tokens < n_ctx:
            raise ConfigError(f'{key} "{text}" has {n_tokens} tokens, fewer than the {n_ctx} context tokens')
        with torch.no_grad():
            ctx = context_embedding(tower, text, n_ctx)
        return ctx, text
    if not 1 <= n_ctx <= tower.max_context():
        raise ConfigError(
            f"the number of text context tokens must be between 1 and {tower.max_context()} for {tower.name}, "
            f"got {n_ctx}"
        )
    ctx = nn.init.normal_(torch.empty(n_ctx, tower.width, dtype=draw_dtype(clip_model)), std=0.02)
    return ctx.float(), " ".join(["X"] * n_ctx)


class ClassPromptLearner(nn.Module):
    """The first layer's text context `ctx` (n_ctx, width) between SOS and "<rest of prefix> <class>."."""

    def __init__(self, clip_model, classnames, n_ctx, ctx_init, key):
        super().__init__()
        ctx, prefix_text = first_context(clip_model, n_ctx, ctx_init, key)
        logger.info(f'Initial text context: "{prefix_text}" (learned tokens: {n_ctx})')
        self.ctx = nn.Parameter(ctx)
        self.n_ctx, self.n_cls = n_ctx, len(classnames)
        register_class_prompts(self, clip_model, prefix_text, classnames)

    def text_prompts(self):
        ctx = self.ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        return torch.cat([self.token_prefix, ctx.to(self.token_prefix.dtype), self.token_suffix], dim=1)


class DeepPrompts(nn.Module):
    """One tower's learned tokens: `first` (the image tower's appended tokens) and `deep` (blocks 1..)."""

    def __init__(self, first=None, deep=()):
        super().__init__()
        self.first = nn.Parameter(first) if first is not None else None
        self.deep = nn.ParameterList([nn.Parameter(p) for p in deep])


class DeepPromptCLIP(nn.Module):
    """Frozen CLIP whose towers take learned tokens -> logits (B, n_cls).

    Attribute order gives the authors' state-dict order: logit_scale, prompt_learner, image_encoder,
    text_encoder (then our vision_prompts / text_prompts, saved under the authors' names).
    """

    def __init__(self, clip_model, prompt_learner=None, vision_prompts=None, text_prompts=None):
        super().__init__()
        self.logit_scale = clip_model.logit_scale
        self.logit_bias = text_tower(clip_model).logit_bias  # None but for the sigmoid-loss families (SigLIP)
        if prompt_learner is not None:
            self.prompt_learner = prompt_learner
        self.image_encoder = clip_model.visual
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.vision_prompts = vision_prompts or DeepPrompts()
        self.text_prompts = text_prompts or DeepPrompts()
        self.register_state_dict_post_hook(lambda module, sd, prefix, meta: _rename(sd, prefix, _AUTHORS_NAMES))
        self.register_load_state_dict_pre_hook(lambda module, sd, prefix, *args: _rename(sd, prefix, _OUR_NAMES))
        self._text_cache = None

    def learned_parameters(self):
        """{name: parameter} of what learns: the prompt learner and the towers' prompts."""
        owners = ("prompt_learner.", "vision_prompts.", "text_prompts.")
        return OrderedDict((n, p) for n, p in self.named_parameters() if n.startswith(owners))

    def prompts(self):
        learner = self.prompt_learner
        return Prompts(
            learner.text_prompts,
            list(self.text_prompts.deep),
            self.vision_prompts.first,
            list(self.vision_prompts.deep),
        )

    def encode_text(self, prompts, normalize=True):
        deep = [authors_fp16(p) for p in prompts.text_deep]
        features = self.text_encoder(prompts.text(), self.prompt_learner.token_ids, deep_prompts=deep)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features

    def text_features(self, prompts, normalize=True):
        """Class features, normalised unless `normalize` is False (DePT's head reads them raw); without
        grad they are computed once until a parameter changes."""
        if torch.is_grad_enabled():
            self._text_cache = None
            return self.encode_text(prompts, normalize)
        key = (tuple((p.data_ptr(), p._version) for p in self.learned_parameters().values()), normalize)
        cache = self._text_cache  # read once: another thread may replace it meanwhile
        if cache is None or cache[0] != key:
            cache = self._text_cache = (key, self.encode_text(prompts, normalize))
        return cache[1]

    def image_features(self, image, prompts, normalize=True):
        if prompts.vision_first is None and not prompts.vision_deep:
            # No image-side prompts (language-only IVLP): the frozen tower, any backbone, nothing to backprop.
            return encode_images(self.image_encoder, image, image_dtype(self.image_encoder), normalize)
        first = None if prompts.vision_first is None else authors_fp16(prompts.vision_first)
        deep = [authors_fp16(p) for p in prompts.vision_deep]
        features = prompted_image_features(self.image_encoder, image, first, deep)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features

    def features_and_logits(self, image):
        prompts = self.prompts()
        image_f = self.image_features(image, prompts).float()
        text_f = self.text_features(prompts).float()
        # (scale * image) @ text, in the authors' order of operations
        logits = (self.logit_scale.exp() * image_f) @ text_f.t()
        return image_f, text_f, logits if self.logit_bias is None else logits + self.logit_bias.float()

    def forward(self, image):
        return self.features_and_logits(image)[2]


class DeepPromptTrainer(LearnerTrainer):
    """A trainer whose whole CustomCLIP is the checkpointed module (the authors save it all)."""

    checkpoint_ignore_keys = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")
    needs_vision_prompts = True

    def load_frozen_clip(self):
        return keeping_the_generator(super().load_frozen_clip)  # their draws are replayed (authors_init.py)

    def replay_authors_init(self, clip_model, vision=(0, 0), text=(0, 0)):
        """The prompts their CLIP construction draws (authors_init.py), after checking the backbone."""
        name, node = type(self).__name__, f"TRAINER.{self.config_node}"
        tower = text_tower(clip_model)
        check_depth(text[1], tower.transformer, f"{node}.PROMPT_DEPTH_TEXT")
        vision_prompted = self.needs_vision_prompts or vision[1]
        if vision_prompted:
            check_vision_prompts(clip_model, name)
            check_depth(vision[1], vision_blocks(clip_model.visual), f"{node}.PROMPT_DEPTH_VISION")
        if is_openai_vit(clip_model):
            return replay_clip_construction(clip_model, vision, text)  # OpenAI's layout: their CLIP's draws
        notice_once(
            logger,
            f"{name}: the authors' order of random draws is replayed for OpenAI's ViT CLIP only; the prompts "
            f"of {tower.name} are drawn directly, N(0, 0.02^2)",
        )
        width = vision_width(clip_model.visual) if vision_prompted else 0
        first = nn.init.normal_(torch.empty(vision[0], width), std=0.02) if vision[1] else None
        vision_deep = [nn.init.normal_(torch.empty(vision[0], width), std=0.02) for _ in range(1, vision[1])]
        text_deep = [nn.init.normal_(torch.empty(text[0], tower.width), std=0.02) for _ in range(1, text[1])]
        return first, vision_deep, text_deep

    def learned_parameters(self):
        return self.model.learned_parameters()

    def saved_module(self):
        return self.model

    # The features protocol (learner.py), through the prompted towers.
    @property
    def frozen_image_encoder(self):
        prompts = self.model.prompts()
        return prompts.vision_first is None and not prompts.vision_deep

    @torch.no_grad()
    def image_features(self, image, normalize=True):
        with autocast_for(self.prec, self.device):
            return self.model.image_features(image.to(self.device), self.model.prompts(), normalize).float()

    @torch.no_grad()
    def class_features(self, image_features=None):
        with autocast_for(self.prec, self.device):
            return self.model.text_features(self.model.prompts()).float()
