"""The open_clip families the toolkit declares, and which methods run on each: the README's backbone table.

Each family names open_clip models; its first model stands for it. The table is computed, not written:
the model is built by open_clip on the meta device (no memory, no weights), its text side is read
through the same seam the trainers use (text_tower.py: context length, pooling, mask, logit bias),
its tokenizer from open_clip's config, and every registered method is checked against it the way
its trainer checks a backbone (deep-prompt methods: prompted_encoders.vision_prompt_refusal).

    python -m coop_toolkit.backbone_families   # prints the table README.md holds
"""

from collections import namedtuple

import open_clip
import torch

Family = namedtuple("Family", "name models")

FAMILIES = (
    Family("OpenAI CLIP (ViT), MetaCLIP, DFN", ("ViT-B-16", "ViT-B-32", "ViT-L-14", "ViT-H-14-quickgelu")),
    Family("OpenAI CLIP (ResNet)", ("RN50", "RN101", "RN50x4", "RN50x16", "RN50x64")),
    Family("SigLIP", ("ViT-B-16-SigLIP", "ViT-L-16-SigLIP-256", "ViT-SO400M-14-SigLIP-384")),
    Family("SigLIP 2", ("ViT-B-16-SigLIP2", "ViT-L-16-SigLIP2-256", "ViT-SO400M-14-SigLIP2")),
    Family("EVA02-CLIP", ("EVA02-B-16", "EVA02-L-14")),
    Family("MobileCLIP", ("MobileCLIP-S2", "MobileCLIP2-S2")),
    Family("Perception Encoder", ("PE-Core-B-16", "PE-Core-L-14-336")),
)


def text_facts(model_name, clip_model):
    """What differs on the text side, as the seam reads it."""
    from .trainers.text_tower import TextTower

    tower = TextTower(clip_model)
    text_cfg = open_clip.get_model_config(model_name)["text_cfg"]
    tokenizer = text_cfg.get("hf_tokenizer_name") or "CLIP BPE"
    mask = "causal" if tower.causal else "none"
    bias = ", logit bias" if tower.logit_bias is not None else ""
    return f"{tokenizer}, {tower.context_length} tokens, pool {tower.pool_type}, mask {mask}{bias}"


def method_support(trainer_cls, clip_model):
    """'yes', or what runs and why the rest does not."""
    from .trainers.deep_prompt import DeepPromptTrainer
    from .trainers.prompted_encoders import vision_prompt_refusal

    if not issubclass(trainer_cls, DeepPromptTrainer):
        refusal = getattr(trainer_cls, "vision_refusal", None)  # e.g. CLIP-LoRA: LoRA in the image attention
        why = refusal(clip_model.visual) if refusal else None
        if why is not None and getattr(trainer_cls, "vision_required", False):  # e.g. MMA: adapters in both towers
            return "no"
        return "yes" if why is None else f"text encoder only (image encoder refused: {why})"
    why = vision_prompt_refusal(clip_model.visual)
    if why is None:
        return "yes"
    return "text prompts only" if not trainer_cls.needs_vision_prompts else "no"


def vision_facts(clip_model):
    from .trainers.prompted_encoders import vision_prompt_refusal

    visual = clip_model.visual
    trunk = getattr(visual, "trunk", None)
    kind = f"timm {type(trunk).__name__}" if trunk is not None else type(visual).__name__
    why = vision_prompt_refusal(visual)
    return kind + (f" (image-tower prompts refused: {why})" if why else "")


def table():
    """The markdown table: one row per family, one column per registered method."""
    from dasslite.engine.build import TRAINER_REGISTRY

    from . import trainers  # noqa: F401  (registers the methods)

    names = sorted(n for n in TRAINER_REGISTRY.registered_names() if _ours(TRAINER_REGISTRY.get(n)))
    lines = [
        "| Family | open_clip models | Text tower | Image tower | " + " | ".join(names) + " |",
        "|" + "---|" * (4 + len(names)),
    ]
    for family in FAMILIES:
        with torch.device("meta"):  # built without memory or initialisation
            clip_model = open_clip.create_model(family.models[0], device="meta")
        cells = [method_support(TRAINER_REGISTRY.get(n), clip_model) for n in names]
        models = ", ".join(f"`{m}`" for m in family.models)
        row = [family.name, models, text_facts(family.models[0], clip_model), vision_facts(clip_model), *cells]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _ours(trainer_cls):
    return trainer_cls.__module__.startswith("coop_toolkit.")


if __name__ == "__main__":
    with torch.no_grad():
        print(table())
