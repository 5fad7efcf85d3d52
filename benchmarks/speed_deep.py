"""speed.py's rows for MaPLe, IVLP, VPT and PromptSRC: ours against the authors' computation.

The authors' computation, written plainly on the same modules and weights: the towers run sequence-first
(L, N, D) as OpenAI's CLIP in their code does, the text tower runs all 77 positions, every deep prompt
goes in by concatenating the sequence around it, the class text features are recomputed at every
training step and every evaluation batch; PromptSRC adds the frozen image tower's pass and its
regularising terms. Ours trims the text to the longest end-of-text position and computes the class
features once per evaluation. The image tower is the same computation in both.
"""

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.cases import Case, speed_cases
from coop_toolkit import trainers
from coop_toolkit.trainers.deep_prompt import DeepPromptTrainer
from coop_toolkit.trainers.ivlp import IVLP
from coop_toolkit.trainers.maple import MaPLe
from coop_toolkit.trainers.promptsrc import PromptSRC, promptsrc_losses
from coop_toolkit.trainers.vpt import VPT
from dasslite.config import get_cfg_default


def build(trainer_class, config_file=""):
    """build(clip_model, classnames) -> the method's model as its trainer builds it, from its default
    config or, given `config_file`, from that yaml's prompt lengths and depths."""

    def make(clip_model, classnames):
        cfg = get_cfg_default()
        trainers.extend_cfg(cfg)
        if config_file:
            cfg.merge_from_file(config_file)
        node = cfg.TRAINER[trainer_class.config_node]
        node.PREC = "fp32"  # the benchmark's --prec runs the CLIP it is given
        layers = len(clip_model.transformer.resblocks)
        for key in [k for k in node if k.startswith("PROMPT_DEPTH")]:
            node[key] = min(node[key], layers)  # the authors' depths, or all layers of a tiny CLIP
        trainer = trainer_class.__new__(trainer_class)
        trainer.cfg, trainer.device, trainer.prec = cfg, clip_model.logit_scale.device, "fp32"
        assert isinstance(trainer, DeepPromptTrainer)
        model = trainer.build_custom_clip(classnames, clip_model)
        learned = set(model.learned_parameters())
        for name, p in model.named_parameters():
            p.requires_grad_(name in learned)
        return model

    return make


def _replace(x, prompt, start):
    """Sequence-first x (L, N, D) with positions start..start+n replaced by the prompt, by concatenation
    (the authors' `.half()` first: the concatenation then promotes it to x's dtype)."""
    n = prompt.shape[0]
    return torch.cat([x[:start], prompt.half().unsqueeze(1).expand(-1, x.shape[1], -1), x[start + n :]])


@contextlib.contextmanager
def built_sequence_first(transformer):
    """The transformer's attention as OpenAI's CLIP builds it (batch_first=False) while the blocks run.

    It switches the shared modules: safe in this single-threaded reference only; the toolkit itself
    never changes a module in a forward (coop_toolkit/trainers/transformer_blocks.py)."""
    attentions = [block.attn for block in transformer.resblocks]
    assert all(isinstance(a, nn.MultiheadAttention) and a.batch_first for a in attentions), "not open_clip's layout"
    for attention in attentions:
        attention.batch_first = False
    try:
        yield
    finally:
        for attention in attentions:
            attention.batch_first = True


def _sequence_first_blocks(transformer, x, replace, mask=None):
    """The blocks over batch-first x, run as the authors' (OpenAI's) CLIP runs them: x.permute(1, 0, 2)
    to (L, N, D) and attention built sequence-first; replace(k, x) puts block k's prompt in."""
    x = x.permute(1, 0, 2)
    with built_sequence_first(transformer):
        for k, block in enumerate(transformer.resblocks):
            x = block(replace(k, x), attn_mask=mask)
    return x.permute(1, 0, 2)


def authors_text(model, prompts):
    x = authors_text_features(model.text_encoder, prompts.text(), model.prompt_learner.token_ids, prompts.text_deep)
    return x / x.norm(dim=-1, keepdim=True)


def authors_text_features(enc, prompts, token_ids, deep=(), replace=None):
    """The authors' TextEncoder.forward on prompt embeddings (N, 77, width): all 77 positions, the blocks
    sequence-first, deep prompt k-1 concatenated in at positions 1..n before block k (k >= 1); or, given
    `replace(k, x)`, what it makes of the sequence-first x before block k."""
    x = prompts.to(enc.dtype) + enc.positional_embedding.to(enc.dtype)
    mask = torch.full((x.shape[1], x.shape[1]), float("-inf"), device=x.device).triu_(1)

    def deep_prompts(k, x):
        return _replace(x, deep[k - 1], 1) if 1 <= k <= len(deep) else x

    x = enc.ln_final(_sequence_first_blocks(enc.transformer, x, replace or deep_prompts, mask))
    return x[torch.arange(x.shape[0]), token_ids.argmax(-1)] @ enc.text_projection


def authors_image(visual, images, first=None, deep=(), normalize=True):
    x = visual.conv1(images.to(visual.conv1.weight.dtype)).flatten(2).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
    x = x + visual.positional_embedding.to(x.dtype)
    if first is not None:
        x = torch.cat([x, first.half().expand(x.shape[0], -1, -1)], dim=1)

    def replace(k, x):
        return _replace(x, deep[k - 1], x.shape[0] - deep[k - 1].shape[0]) if 1 <= k <= len(deep) else x

    x = _sequence_first_blocks(visual.transformer, visual.ln_pre(x), replace)
    x = visual.ln_post(x[:, 0]) @ visual.proj
    return x / x.norm(dim=-1, keepdim=True) if normalize else x


def authors_logits(model, images):
    prompts = model.prompts()
    image = authors_image(model.image_encoder, images, prompts.vision_first, prompts.vision_deep).float()
    if prompts.text is None:  # VPT: the frozen "a photo of a {}." features
        text = model.fixed_text_features
    else:
        text = authors_text(model, prompts).float()
    return (model.logit_scale.exp() * image) @ text.t(), image, text


def _sgd(loss, optim):
    optim.zero_grad()
    loss.backward()
    optim.step()


def promptsrc_step(model, images, labels, optim):
    """Ours: the trainer's loss terms (cross-entropy and the three regularising terms)."""
    _sgd(sum(promptsrc_losses(model(images, details=True), labels, 25, 10).values()), optim)


def authors_promptsrc_step(model, images, labels, optim):
    """Theirs: the same terms, with the frozen image pass of their ZS_image_encoder copy."""
    logits, image, text = authors_logits(model, images)
    fixed = model.fixed_embeddings / model.fixed_embeddings.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        zs_image = authors_image(model.image_encoder, images).float()
        zs_logits = (model.logit_scale.exp() * zs_image) @ fixed.t()
    kl = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(zs_logits, 1), reduction="sum", log_target=True)
    scl = F.l1_loss(text, fixed) * 25 + F.l1_loss(image, zs_image) * 10 + kl / logits.numel()
    _sgd(F.cross_entropy(logits, labels) + scl, optim)


def authors_reference(model, images):
    return authors_logits(model, images)[0]


TRAINERS = {"MaPLe": MaPLe, "IVLP": IVLP, "VPT": VPT, "PromptSRC": PromptSRC}


# The authors' batch size, 4; PromptSRC's step adds its regularising terms to the cross-entropy.
STEPS = {"PromptSRC": dict(step=promptsrc_step, reference_step=authors_promptsrc_step)}
for _name, _cls in TRAINERS.items():
    speed_cases(_name, Case(_name, build(_cls), authors_reference, batch=4, classes=100, **STEPS.get(_name, {})))
