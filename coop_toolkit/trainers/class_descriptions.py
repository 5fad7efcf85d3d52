"""LLM-written class descriptions, read from a file the user supplies in the CoPrompt authors' format.

The format (ShuvenduRoy/CoPrompt, gpt_file/<dataset>_prompt.json): one JSON object mapping each class
name, written with spaces for underscores, to a list of sentences, the same number for every class
(their code stacks them into one tensor). The toolkit ships no such file; TRAINER.CoPrompt.GPT_FILE
names one, or a folder holding the authors' files under their names (DATASET_FILES).
"""

import json
import logging
import os

import torch

from dasslite.errors import ConfigError, UserFileNotFoundError

from .clip_backbone import TextEncoder
from .precision import autocast_for

logger = logging.getLogger(__name__)

# DATASET.NAME -> the authors' file stem (their dataset_name_mapping): <folder>/<stem>_prompt.json
DATASET_FILES = {
    "Caltech101": "caltech",
    "DescribableTextures": "dtd",
    "EuroSAT": "eurosat",
    "FGVCAircraft": "fgvc",
    "Food101": "food101",
    "ImageNet": "imagenet",
    "ImageNetA": "imagenet_a",
    "ImageNetR": "imagenet_r",
    "ImageNetSketch": "imagenet_sketch",
    "ImageNetV2": "imagenetv2",
    "OxfordFlowers": "oxford_flowers",
    "OxfordPets": "oxford_pets",
    "StanfordCars": "stanford_cars",
    "SUN397": "sun397",
    "UCF101": "ucf101",
}


def descriptions_file(path, dataset_name, key):
    """The file to read: `path` itself, or the authors' file for the dataset when `path` is a folder."""
    if os.path.isdir(path):
        stem = DATASET_FILES.get(dataset_name)
        if stem is None:
            raise ConfigError(
                f"{key} is a folder ({path}), but the authors name no descriptions file for dataset "
                f'"{dataset_name}" (they have: {", ".join(DATASET_FILES)}); set {key} to the JSON file itself'
            )
        path = os.path.join(path, f"{stem}_prompt.json")
    if not os.path.isfile(path):
        raise UserFileNotFoundError(f"{key}: no class descriptions file {path}")
    return path


def read_descriptions(path, classnames, key):
    """[[sentence, ...] per class] in `classnames` order, each class the same number of sentences."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{key}: cannot read the class descriptions file {path}: {err}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{key}: {path} must hold one JSON object {{class name: [descriptions]}}")
    per_class = []
    for name in classnames:
        name = name.replace("_", " ")  # the authors' lookup key
        sentences = table.get(name)
        if sentences is None:
            raise ConfigError(
                f'{key}: class "{name}" is not in the class descriptions file {path}; add it (a list of '
                f"sentences under its name, spaces for underscores)"
            )
        if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
            raise ConfigError(f'{key}: class "{name}" in {path} must map to a non-empty list of sentences')
        per_class.append(sentences)
    counts = {len(s) for s in per_class}
    if len(counts) > 1:
        uneven = ", ".join(f'"{n}": {len(s)}' for n, s in zip(classnames, per_class) if len(s) != len(per_class[0]))
        raise ConfigError(
            f"{key}: every class needs the same number of descriptions in {path} (the authors stack them); "
            f'"{classnames[0]}" has {len(per_class[0])}, but {uneven}'
        )
    return per_class


@torch.no_grad()
def description_features(clip_model, per_class, prec):
    """(n_descriptions, n_cls, embed_dim) fp32: each description's L2-normalised frozen text features."""
    encoder = TextEncoder(clip_model)
    tower = encoder.tower
    device = tower.token_embedding.weight.device
    features = []
    for sentences in per_class:
        ids = tower.tokenize(sentences).to(device)
        with autocast_for(prec, device):
            f = encoder(tower.embed(ids), ids).float()
        features.append(f / f.norm(dim=-1, keepdim=True))
    return torch.stack(features, dim=1)
