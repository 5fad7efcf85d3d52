"""A run as files anyone can apply with open_clip and torch: safetensors weights plus a JSON card.

Image-independent class features (CoOp, the zero-shot trainers, and any trainer whose
`image_conditioned` is False): `text_features` (n_classes, embed_dim, L2-normalised, fp32) and
`logit_scale` (the exp'd scale, a scalar), so that

    logits = logit_scale * normalize(clip.encode_image(preprocess(image))) @ text_features.T

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

CARD_VERSION = 1
COCOOP_USAGE = (
    "Per image x: f = normalize(encode_image(x)); bias = meta_net(f) (Linear linear1, ReLU, Linear linear2); "
    "prompts[c] = [token_prefix[c], ctx + bias, token_suffix[c]] (token embeddings); text[c] = normalize("
    "text_transformer(prompts[c] + positional_embedding) read at token_ids[c].argmax(), ln_final, @ text_projection); "
    "logits[c] = logit_scale * f @ text[c]"
)


class ExportError(UserError, ValueError):
    """The run's trainer has nothing open_clip could apply on its own."""


def card_path(out):
    root, ext = os.path.splitext(out)
    return (root if ext == ".safetensors" else out) + ".json"


def export_run(run, out):
    """Write `out` (.safetensors) and its card, each atomically with the umask's mode; returns the card."""
    trainer = run.trainer
    if not getattr(trainer, "frozen_image_encoder", False):
        raise ExportError(
            f"{type(trainer).__name__} learns prompts inside the image encoder, so open_clip's frozen image "
            f"encoder would not give this run's image features and no exported head could reproduce its "
            f"logits; classify with predict.py or the Python API (coop_toolkit.load_run) instead."
        )
    scale = run.logit_scale()
    if not getattr(trainer, "image_conditioned", True):
        tensors = {"text_features": run.text_features().float()}
        kind, usage = "classifier_head", "logits = logit_scale * normalize(encode_image(x)) @ text_features.T"
    elif hasattr(trainer.model, "prompt_learner"):
        learner = trainer.model.prompt_learner
        tensors = {k: v.detach().float() for k, v in learner.state_dict().items()}
        tensors["token_ids"] = learner.token_ids.detach()
        kind, usage = "image_conditioned_prompt_learner", COCOOP_USAGE
    else:
        raise ExportError(
            f"Trainer {type(trainer).__name__} neither has image-independent class features "
            f"(image_conditioned = False) nor a prompt_learner to export"
        )
    tensors["logit_scale"] = torch.tensor(scale, dtype=torch.float32)
    tensors = {k: v.contiguous().cpu() for k, v in tensors.items()}
    data = save(tensors, metadata={"format": f"coop_toolkit.{kind}", "card": os.path.basename(card_path(out))})
    with atomic_write(out, mode="wb") as f:  # safetensors' own save_file writes in place with mode 0600
        f.write(data)
    record = run.record or {}
    card = {
        "format": f"coop_toolkit.{kind}",
        "version": CARD_VERSION,
        "weights": os.path.basename(out),
        "trainer": type(trainer).__name__,
        "classnames": run.classnames,
        "backbone": record.get("backbone") or {"name": trainer.cfg.MODEL.BACKBONE.NAME},
        "preprocess": run.preprocess_record,
        "logit_scale": scale,
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
        "usage": usage,
    }
    with atomic_write(card_path(out)) as f:
        json.dump(card, f, indent=2)
    return card
