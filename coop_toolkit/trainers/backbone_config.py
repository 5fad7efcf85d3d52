"""What a backbone family's open_clip config says beyond the model: its test-time preprocessing and the
family facts run.json keeps (read from open_clip's configs, without weights where they say it)."""

import json
import logging
import os
from dataclasses import asdict

import open_clip
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
    """family_preprocess without building the model where open_clip's configs say it (a tag's pretrained
    config, a local-dir's open_clip_config.json); size not included."""
    preprocess = asdict(PreprocessCfg())
    if name.startswith("local-dir:"):
        found = local_dir_config(name).get("preprocess_cfg", {})
    elif name.startswith("hf-hub:"):
        found = family_preprocess(load_clip(name))
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


def check_normalization(pixel_mean, pixel_std, clip_model):
    """Warn when INPUT.PIXEL_MEAN / PIXEL_STD are not the values the backbone was trained with."""
    family = family_preprocess(clip_model)
    mean, std = [round(v, 6) for v in family["mean"]], [round(v, 6) for v in family["std"]]
    if [round(v, 6) for v in pixel_mean] != mean or [round(v, 6) for v in pixel_std] != std:
        logger.warning(
            f"INPUT.PIXEL_MEAN {list(pixel_mean)} / PIXEL_STD {list(pixel_std)} are not the values this backbone "
            f"was trained with; set INPUT.PIXEL_MEAN {mean} INPUT.PIXEL_STD {std}"
        )
