"""A run as files anyone can apply with open_clip and torch: safetensors weights plus a JSON card.

Image-independent class features (CoOp, the zero-shot trainers, and any trainer whose card declares
`export=CLASSIFIER_HEAD` and whose image features are open_clip's own): `text_features` (n_classes,
embed_dim, L2-normalised, fp32) and `logit_scale` (the exp'd scale, a scalar), so that

    logits = logit_scale * normalize(clip.encode_image(preprocess(image))) @ text_features.T (+ logit_bias)

(`logit_bias` only where the backbone has one: SigLIP, SigLIP 2.)

Image-conditioned trainers (CoCoOp): the prompt learner's tensors (`ctx`, `meta_net.*`,
`token_prefix`, `token_suffix`, `token_ids`) and `logit_scale`; the card says how they combine.
The card (FILE with .json in place of .safetensors) holds the backbone identity, class names in
label order and the test-time preprocessing of run.json. No file is a pickle.
"""

import json
import os

import torch
from safetensors.torch import save

from dasslite.errors import UserError
from dasslite.utils.io import atomic_write

from .method_card import CLASSIFIER_HEAD, card_of

CARD_VERSION = 1
COCOOP_USAGE = (
    "Per image x: f = normalize(encode_image(x)); bias = meta_net(f) (Linear linear1, ReLU, Linear linear2); "
    "prompts[c] = [token_prefix[c], ctx + bias, token_suffix[c]] (token embeddings); text[c] = normalize("
    "text_transformer(prompts[c] + positional_embedding, the model's attention mask) after ln_final, read at the "
    "model's pooled position (token_ids[c].argmax() for CLIP's argmax pool, the last position for SigLIP's), "
    "through text_projection); "
    "logits[c] = logit_scale * f @ text[c]"
)


class ExportError(UserError, ValueError):
    """The run's trainer has nothing open_clip could apply on its own."""


def card_path(out):
    root, ext = os.path.splitext(out)
    return (root if ext == ".safetensors" else out) + ".json"


def export_run(run, out):
    """Write `out` (.safetensors) and its card, each atomically with the umask's mode; returns the card.

    What is exported is the trainer's card's (`export`, coop_toolkit/method_card.py): a classifier head
    (which needs `frozen_image_encoder`: open_clip's own image features) or an image-conditioned prompt
    learner's tensors; a method that declares neither is refused with its `no_export_reason`.
    """
    trainer = run.trainer
    name = trainer.cfg.TRAINER.NAME or type(trainer).__name__
    method = card_of(type(trainer))
    kind = method.export
    if kind == CLASSIFIER_HEAD and not getattr(trainer, "frozen_image_encoder", False):
        kind = None
    if kind is None:
        reason = method.no_export_reason or "declares no export (its card's `export` is None)"
        raise ExportError(
            f"{name} {reason}; classify with predict.py or the Python API (coop_toolkit.load_run) instead."
        )
    scale = run.logit_scale()
    if kind == CLASSIFIER_HEAD:
        tensors = {"text_features": run.text_features().float()}
        usage = "logits = logit_scale * normalize(encode_image(x)) @ text_features.T"
    else:
        learner = trainer.model.prompt_learner
        tensors = {k: v.detach().float() for k, v in learner.state_dict().items()}
        tensors["token_ids"] = learner.token_ids.detach()
        usage = COCOOP_USAGE
    tensors["logit_scale"] = torch.tensor(scale, dtype=torch.float32)
    bias = run.trainer.logit_bias()
    if bias is not None:  # a sigmoid-loss family (SigLIP): added to every logit
        tensors["logit_bias"] = bias.detach().float().reshape(())
        usage += " + logit_bias"
    tensors = {k: v.contiguous().cpu() for k, v in tensors.items()}
    data = save(tensors, metadata={"format": f"coop_toolkit.{kind}", "card": os.path.basename(card_path(out))})
    with atomic_write(out, mode="wb") as f:  # safetensors' own save_file writes in place with mode 0600
        f.write(data)
    record = run.record or {}
    card = {
        "format": f"coop_toolkit.{kind}",
        "version": CARD_VERSION,
        "weights": os.path.basename(out),
        "trainer": name,
        "classnames": run.classnames,
        "backbone": record.get("backbone") or {"name": trainer.cfg.MODEL.BACKBONE.NAME},
        "family": record.get("family"),  # open_clip class, image tower, tokenizer, context length
        "preprocess": run.preprocess_record,
        "logit_scale": scale,
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
        "usage": usage,
    }
    with atomic_write(card_path(out)) as f:
        json.dump(card, f, indent=2)
    return card
