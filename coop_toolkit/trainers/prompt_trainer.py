"""The prompt learners' defaults on the trainer layer (learner.py): context vectors, class prompts, PromptTrainer.

`PromptTrainer` is a `LearnerTrainer` whose model has a `prompt_learner` (what learns and what
checkpoints hold, registered as `model_name` "prompt_learner"; its `token_prefix` / `token_suffix`
buffers are rebuilt from the class names, so loading skips them) and a `text_features()` giving the
class features. `context_node`, `init_context` and `register_class_prompts` build CoOp-style prompts.
"""

import logging
from collections import OrderedDict

import torch
import torch.nn as nn
from yacs.config import CfgNode as CN

from dasslite.errors import ConfigError

from .clip_backbone import draw_dtype
from .learner import ClipTrainer, LearnerTrainer, encode_images
from .precision import PRECISIONS, autocast_for, resolve_precision
from .text_tower import text_tower

# ClipTrainer, encode_images and the precision helpers are re-exported for the code that imported them from here.
__all__ = ["PRECISIONS", "autocast_for", "resolve_precision", "ClipTrainer", "encode_images", "PromptTrainer"]

logger = logging.getLogger(__name__)


def context_node(**extra):
    """A trainer node with the keys every CoOp-style prompt has (N_CTX, CTX_INIT, PREC), then `extra`."""
    node = CN()
    node.N_CTX = 16  # number of context vectors M (replaced by the token count of CTX_INIT)
    node.CTX_INIT = ""  # initialise the context from these words, e.g. "a photo of a"
    node.PREC = "fp16"  # fp16, fp32, amp or bf16 (fp16/amp fall back to fp32 on CPU)
    for key, value in extra.items():
        node[key] = value
    return node


def init_context(clip_model, n_ctx, ctx_init, n_cls_csc, key):
    """Initial context vectors (fp32) and the text that stands in for them in the prompt.

    With `ctx_init` words, the context starts as their token embeddings and M becomes their number
    of BPE tokens (the original takes the word count, which misaligns multi-token words). Otherwise
    N(0, 0.02^2) drawn in CLIP's dtype, as the original draws it, so a seed gives the same start
    (clip_backbone.draw_dtype).
    `n_cls_csc` > 0 makes class-specific contexts.
    """
    tower = text_tower(clip_model)
    if ctx_init is True:
        raise ConfigError(
            f"{key} is True (as in the KgCoOp / ProGrad yamls, whose trainers choose the words themselves); "
            f'this trainer needs the words, e.g. {key} "a photo of a", or False / "" for a random context'
        )
    if ctx_init:
        text = ctx_init.replace("_", " ")
        n_tokens = tower.count_tokens(text)
        if n_tokens > tower.max_context():  # the special tokens and at least one class token must still fit
            raise ConfigError(
                f'{key} "{text}" has {n_tokens} tokens; at most {tower.max_context()} fit in the '
                f"{tower.context_length}-token context of {tower.name}. Use fewer words."
            )
        with torch.no_grad():
            ctx = context_embedding(tower, text, n_tokens)
        if n_cls_csc:
            ctx = ctx.expand(n_cls_csc, -1, -1).clone()
        logger.info(f'Initial context: "{text}"')
    else:
        if not 1 <= n_ctx <= tower.max_context():
            raise ConfigError(f"N_CTX must be between 1 and {tower.max_context()} for {tower.name}, got {n_ctx}")
        shape = (n_cls_csc, n_ctx, tower.width) if n_cls_csc else (n_ctx, tower.width)
        logger.info("Initializing class-specific contexts" if n_cls_csc else "Initializing a generic context")
        ctx = torch.empty(shape, dtype=draw_dtype(clip_model))
        nn.init.normal_(ctx, std=0.02)
        ctx = ctx.float()
        text = " ".join(["X"] * n_ctx)
        logger.info(f'Initial context: "{text}"')
    logger.info(f"Number of context words (tokens): {ctx.shape[-2]}")
    return ctx, text


def register_class_prompts(learner, clip_model, prefix_text, classnames, template=None):
    """Give `learner` the frozen pieces around its context, for prompts "<prefix_text> <class>." (or
    `template`.format(class), whose first n_ctx tokens stand for the context).

    Buffers: `token_prefix` (SOS), `token_suffix` (class tokens, ".", EOS, padding) and `token_ids`
    (not saved). The two embedding buffers carry the original's state-dict names, so checkpoints
    load both ways. Returns the class names as written in the prompts.
    """
    tower = text_tower(clip_model)
    names = [name.replace("_", " ") for name in classnames]
    token_ids = class_prompt_ids(tower, prefix_text, learner.n_ctx, names, template)
    with torch.no_grad():
        embedding = tower.embed(token_ids).float()
    start = tower.lead + learner.n_ctx
    learner.register_buffer("token_prefix", embedding[:, : tower.lead])
    learner.register_buffer("token_suffix", embedding[:, start:])
    learner.register_buffer("token_ids", token_ids, persistent=False)
    return names


def context_embedding(tower, text, n_tokens):
    """fp32 token embeddings (n_tokens, width) of the first n_tokens tokens of `text`."""
    return tower.embed(tower.tokenize([text]))[0, tower.lead : tower.lead + n_tokens].float()


def class_prompt_ids(tower, prefix_text, n_ctx, names, template=None):
    """Token ids of "<prefix_text> <name>." (or `template`.format(name)) per class, checked to fit and,
    without a template, to hold the context's n_ctx tokens right after the leading special tokens (where
    the learned context goes)."""
    prompts = [template.format(name) if template else f"{prefix_text} {name}." for name in names]
    token_ids = tower.tokenize(prompts)
    if template:  # its first n_ctx tokens stand for the context, whatever words they are
        return token_ids
    expected = tower.tokenize([prefix_text])[0, tower.lead : tower.lead + n_ctx]
    got = token_ids[:, tower.lead : tower.lead + n_ctx]
    if not torch.equal(got, expected.expand_as(got)):
        raise ConfigError(
            f'{tower.name}: its tokenizer splits "{prefix_text}" differently inside the class prompts, so the '
            f"{n_ctx} context tokens would not line up; choose other initial words"
        )
    return token_ids


class PromptTrainer(LearnerTrainer):
    """A learner whose model holds a `prompt_learner` and computes its class features with `text_features()`."""

    model_name = "prompt_learner"  # the engine's name for saved_module(): OUTPUT_DIR/<model_name>/model.pth.tar-N
    checkpoint_ignore_keys = ("token_prefix", "token_suffix")  # rebuilt from the current class names
    # The features protocol (learner.py). True when the class text features depend on the image
    # (CoCoOp), so no fixed classifier exists.
    image_conditioned = False
    frozen_image_encoder = True  # image features are frozen CLIP's, so open_clip alone reproduces them

    def learned_parameters(self):
        """Default: every parameter of the prompt learner."""
        return OrderedDict((f"prompt_learner.{name}", p) for name, p in self.model.prompt_learner.named_parameters())

    def saved_module(self):
        return self.model.prompt_learner

    @torch.no_grad()
    def class_features(self, image_features=None):
        """L2-normalised fp32 class text features (n_cls, embed_dim); image-conditioned: (B, n_cls, embed_dim)."""
        with autocast_for(self.prec, self.device):
            return self.model.text_features().float()
