"""Build a tiny random CLIP and save it in OpenAI's release layout.

The tests and the offline demo load it through the same `MODEL.BACKBONE.NAME /path/to/file` code path
that real OpenAI weights take. It has CLIP's real tokenizer vocabulary (49,408 ids) and context
length (77), so prompts are built exactly as with real weights; only the widths and depths are small.

    python -m tools.tiny_clip OUT.pt [--vision vit|rn] [--format jit|state_dict] [--image-size 224]
        [--shape ViT-B/32|ViT-B/16|ViT-L/14] [--layers 2]
"""

import argparse

import torch
import torch.nn as nn
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from coop_toolkit.trainers.clip_backbone import CONTEXT_LENGTH

VOCAB_SIZE = 49408


# Tiny stand-ins for the real shapes: what differs between them is the patch size and that the
# vision and text towers (and the joint embedding) have different widths.
SHAPES = {
    "ViT-B/32": dict(patch_size=32, width=96, text_width=64, embed_dim=32),
    "ViT-B/16": dict(patch_size=16, width=96, text_width=64, embed_dim=32),
    "ViT-L/14": dict(patch_size=14, width=128, text_width=96, embed_dim=96),
}


def build_tiny_clip(
    vision="vit", image_size=224, width=64, layers=2, embed_dim=32, seed=0, patch_size=32, text_width=None
):
    """A randomly initialised CLIP (fp32) with OpenAI's architecture at a tiny size.

    `width` is the image tower's width, `text_width` the text tower's (default: the same).
    """
    text_width = text_width or width
    if vision == "vit":
        vision_cfg = CLIPVisionCfg(layers=layers, width=width, patch_size=patch_size, image_size=image_size)
    elif vision == "rn":  # ModifiedResNet: 4 stages of one block; attention-pool output = embed_dim
        vision_cfg = CLIPVisionCfg(layers=(1, 1, 1, 1), width=width // 4, image_size=image_size, head_width=width // 4)
    else:
        raise ValueError(f'vision must be "vit" or "rn", got "{vision}"')
    text_cfg = CLIPTextCfg(
        context_length=CONTEXT_LENGTH,
        vocab_size=VOCAB_SIZE,
        width=text_width,
        heads=text_width // 64 or 1,
        layers=layers,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIP(embed_dim, vision_cfg=vision_cfg, text_cfg=text_cfg, quick_gelu=True)
    return model.eval()


def openai_state_dict(model):
    """The state dict as OpenAI's release files hold it (with their three metadata entries)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items() if k != "attn_mask"}
    sd["input_resolution"] = torch.tensor(
        model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    )
    sd["context_length"] = torch.tensor(CONTEXT_LENGTH)
    sd["vocab_size"] = torch.tensor(VOCAB_SIZE)
    return sd


def _as_torchscript(state_dict):
    """A TorchScript module whose state_dict() has exactly these keys (like OpenAI's .pt archives)."""
    root = nn.Module()
    for name, tensor in state_dict.items():
        module = root
        *parents, leaf = name.split(".")
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_buffer(leaf, tensor)
    return torch.jit.script(root)


def build_tiny_shaped(shape, image_size=224, layers=2, seed=0):
    """A tiny CLIP shaped like `shape` (a key of SHAPES: patch size, distinct tower widths)."""
    return build_tiny_clip(image_size=image_size, layers=layers, seed=seed, **SHAPES[shape])


def save_tiny_clip(path, vision="vit", fmt="jit", image_size=224, seed=0, shape=None, layers=2):
    """Save a tiny CLIP to `path` in OpenAI's layout; returns the fp32 model that was saved.

    `shape` (a key of SHAPES) builds a ViT shaped like that model instead of the default tiny one.
    """
    if shape is not None:
        model = build_tiny_shaped(shape, image_size=image_size, layers=layers, seed=seed)
    else:
        model = build_tiny_clip(vision=vision, image_size=image_size, seed=seed, layers=layers)
    sd = openai_state_dict(model)
    if fmt == "jit":
        _as_torchscript(sd).save(str(path))
    elif fmt == "state_dict":
        torch.save(sd, str(path))
    else:
        raise ValueError(f'format must be "jit" or "state_dict", got "{fmt}"')
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--vision", default="vit", choices=["vit", "rn"])
    parser.add_argument("--format", default="jit", choices=["jit", "state_dict"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=sorted(SHAPES), help="a ViT shaped like this model (patch, widths)")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    save_tiny_clip(args.out, args.vision, args.format, args.image_size, args.seed, args.shape, args.layers)


if __name__ == "__main__":
    main()
