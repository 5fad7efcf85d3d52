"""What a backbone family's open_clip config says beyond the model: its preprocessing, which becomes the
run's INPUT keys, and the family facts run.json keeps (read from open_clip's configs, without weights
where they say it)."""

import json
import logging
import os
from dataclasses import asdict

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transform import PreprocessCfg

from .clip_backbone import CONTEXT_LENGTH, OPENAI_MODELS, image_resolution, load_clip

logger = logging.getLogger(__name__)


def local_dir_config(name):
    """The open_clip_config.json of a `local-dir:` folder (model_cfg, preprocess_cfg)."""
    with open(os.path.join(name.partition(":")[2], "open_clip_config.json")) as f:
        return json.load(f)


def family_preprocess(clip_model):
    """open_clip's test-time preprocessing of the model's family (preprocess_cfg, set by open_clip when it
    builds the model from its config and tag): size, mean, std, interpolation, resize_mode. A model in
    OpenAI's layout read from a file has OpenAI's (open_clip's defaults)."""
    preprocess = asdict(PreprocessCfg())
    preprocess.update(getattr(clip_model.visual, "preprocess_cfg", None) or {})
    preprocess["size"] = image_resolution(clip_model)
    return preprocess


def preprocess_of_name(name):
    """family_preprocess without building the model, from open_clip's configs (a tag's pretrained config,
    a local-dir's open_clip_config.json; an hf-hub: name's is on the hub: family_input); size not included."""
    preprocess = asdict(PreprocessCfg())
    if name.startswith("local-dir:"):
        found = local_dir_config(name).get("preprocess_cfg", {})
    elif ":" in name and not os.path.isfile(os.path.expanduser(name)):
        model, _, tag = name.partition(":")
        found = open_clip.get_pretrained_cfg(model, tag) or {}
    else:  # OpenAI's names and files
        found = {}
    preprocess.update({k: v for k, v in found.items() if k in preprocess and k != "size"})
    del preprocess["size"]
    return preprocess


def model_config_of_name(name):
    """open_clip's model config for MODEL.BACKBONE.NAME `name` (None for a file in OpenAI's layout)."""
    if name.startswith("local-dir:"):
        return local_dir_config(name).get("model_cfg")
    if name.startswith("hf-hub:") or os.path.isfile(os.path.expanduser(name)):
        return None
    model = OPENAI_MODELS[name][0] if name in OPENAI_MODELS else name.partition(":")[0]
    return open_clip.get_model_config(model)


def family_record(name):
    """The family facts run.json keeps: the open_clip class and the tokenizer, from open_clip's config."""
    if name.startswith("hf-hub:"):  # its config lives on the hub; the name says where
        return {"model_class": None, "image_tower": None, "tokenizer": name, "context_length": None}
    config = model_config_of_name(name) or {}
    text = config.get("text_cfg", {})
    custom = config.get("custom_text") or bool(text.get("hf_model_name"))
    return {
        "model_class": "CustomTextCLIP" if custom else "CLIP",
        "image_tower": image_tower_kind(config),
        "tokenizer": text.get("hf_tokenizer_name") or "open_clip SimpleTokenizer (CLIP BPE)",
        "context_length": text.get("context_length", CONTEXT_LENGTH),
    }


def image_tower_kind(config):
    vision = config.get("vision_cfg", {})
    return f"timm {vision['timm_model_name']}" if vision.get("timm_model_name") else "open_clip"


# The trainers' yamls hold OpenAI CLIP's preprocessing at ViT-B/16's resolution: an INPUT key still at
# its value here was left to the backbone (adopt_family_input).
YAML_INPUT = {
    "SIZE": (224, 224),
    "INTERPOLATION": "bicubic",
    "PIXEL_MEAN": list(OPENAI_DATASET_MEAN),
    "PIXEL_STD": list(OPENAI_DATASET_STD),
    "TEST_RESIZE": "shortest",
}


def image_size_of_name(name):
    """(H, W) that backbone `name` takes; from open_clip's model config when it has one (no weights read)."""
    config = model_config_of_name(name)
    size = config["vision_cfg"]["image_size"] if config else load_clip(name).visual.image_size
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def family_input(name):
    """The INPUT keys of backbone `name`'s own preprocessing (open_clip's config of it): SIZE,
    INTERPOLATION, PIXEL_MEAN, PIXEL_STD and TEST_RESIZE (open_clip's resize_mode)."""
    if name.startswith("hf-hub:"):  # its config lives on the hub: read from the model, built once
        preprocess = family_preprocess(load_clip(name))
    else:
        preprocess = {**preprocess_of_name(name), "size": image_size_of_name(name)}
    return {
        "SIZE": tuple(preprocess["size"]),
        "INTERPOLATION": preprocess["interpolation"],
        "PIXEL_MEAN": [float(v) for v in preprocess["mean"]],
        "PIXEL_STD": [float(v) for v in preprocess["std"]],
        "TEST_RESIZE": preprocess["resize_mode"],
    }


def adopt_family_input(cfg):
    """Give the INPUT keys of the unfrozen `cfg` still at the yamls' values (YAML_INPUT) the backbone's own
    (family_input), for training and testing alike; a key set to another value is kept. Returns what to
    log, as (level, line): one info line for the keys adopted, one warning for those kept. OpenAI's
    weights (its names, files in its layout) are left alone: the yamls' values are theirs."""
    name = cfg.MODEL.BACKBONE.NAME
    if name in OPENAI_MODELS or os.path.isfile(os.path.expanduser(name)):
        return []
    adopted, kept = [], []
    for key, value in family_input(name).items():
        if _same(cfg.INPUT[key], value):
            continue
        if _same(cfg.INPUT[key], YAML_INPUT[key]):
            adopted.append(f"INPUT.{key} {_shown(value)}")
            cfg.INPUT[key] = value
        else:
            kept.append(f"INPUT.{key} {_shown(cfg.INPUT[key])} (its own: {_shown(value)})")
    lines = []
    if adopted:
        why = f"{name}'s own preprocessing (open_clip's config) replaces the yaml's OpenAI values"
        lines.append((logging.INFO, f"{why}: {', '.join(adopted)}"))
    if kept:
        why = f"{name} was trained with other preprocessing; the values set are kept"
        lines.append((logging.WARNING, f"{why}: {'; '.join(kept)}"))
    return lines


def _same(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return [round(float(v), 6) for v in a] == [round(float(v), 6) for v in b]


def _shown(value):
    return value if isinstance(value, str) else str(tuple(value) if len(value) == 2 else list(value))
