"""Tiny random instances of each open_clip family, saved as open_clip's `local-dir:` folders.

Each one is built by open_clip from its own config of the family (text_cfg and vision_cfg flags kept:
context length, pool type, causal mask, projection bias, logit bias, timm tower) with the widths and
depths shrunk, and saved as open_clip_config.json (model_cfg + the family's preprocess_cfg) plus
open_clip_pytorch_model.bin, so `MODEL.BACKBONE.NAME local-dir:/path` loads it the way a user's local
copy of the real model loads. timm towers cannot be shrunk through open_clip's config (it passes no
size arguments to timm), so a shrunk variant of the family's own timm architecture is registered with
timm under `tiny_<timm name>`. SigLIP's (T5's) and SigLIP 2's (Gemma's) tokenizers live on the Hugging
Face hub: a small BPE tokenizer with their special-token layout is trained here and saved in the folder,
where open_clip.get_tokenizer("local-dir:...") builds its HFTokenizer from it.

    python -m tools.tiny_families OUT_DIR [--family siglip]
"""

import argparse
import copy
import json
import os

import open_clip
import timm
import torch

IMAGE_SIZE = 64
# family -> the open_clip config it is built from
FAMILIES = {
    "openai": "ViT-B-16",
    "siglip": "ViT-B-16-SigLIP",
    "siglip2": "ViT-B-16-SigLIP2",
    "eva02": "EVA02-B-16",
    "mobileclip": "MobileCLIP-S2",
    "pe": "PE-Core-B-16",
}
# timm architecture -> the size arguments that shrink it
_TIMM_SHRINK = {
    "fastvit_mci2": dict(layers=(1, 1, 1, 1), embed_dims=(16, 32, 64, 128)),
}
_VIT_SHRINK = dict(embed_dim=64, depth=2, num_heads=2, img_size=IMAGE_SIZE)
# Text for the tokenizers' training: every letter, digit and mark, and the words of the prompts.
_CORPUS = [
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 . , ' - _ ( ) ! ?",
    "a photo of a dog. a photo of a cat. a type of pet, a photo of a bird.",
    "abyssinian american bulldog beagle great pyrenees yorkshire terrier cat dog airplane",
]


def tiny_timm_name(name):
    """Register (once) and return a shrunk variant of timm's `name`, same architecture class."""
    tiny = f"tiny_{name}"
    if not timm.is_model(tiny):
        shrink = _TIMM_SHRINK.get(name, _VIT_SHRINK)

        def build(pretrained=False, **kwargs):
            return timm.create_model(name, pretrained=False, **{**shrink, **kwargs})

        build.__name__ = tiny
        timm.models.register_model(build)
    return tiny


def tiny_config(family):
    """open_clip's config of the family with widths and depths shrunk (every other flag kept)."""
    cfg = copy.deepcopy(open_clip.get_model_config(FAMILIES[family]))
    cfg["embed_dim"] = 32
    text = cfg["text_cfg"]
    text.update(width=64, heads=2, layers=2)
    vision = cfg["vision_cfg"]
    vision["image_size"] = IMAGE_SIZE
    if vision.get("timm_model_name"):
        vision["timm_model_name"] = tiny_timm_name(vision["timm_model_name"])
        if vision.get("timm_proj") == "none":  # the trunk's width is the embedding (SigLIP: 768 both)
            cfg["embed_dim"] = _VIT_SHRINK["embed_dim"]
    else:
        vision.update(width=64, layers=2, patch_size=16)
    return cfg


def family_preprocess(family):
    """The preprocess_cfg of the family's first pretrained tag (mean, std, interpolation, resize mode)."""
    name = FAMILIES[family]
    tags = open_clip.list_pretrained_tags_by_model(name)
    pretrained = open_clip.get_pretrained_cfg(name, tags[0]) if tags else {}
    keys = ("mean", "std", "interpolation", "resize_mode")
    return {"size": IMAGE_SIZE, **{k: pretrained[k] for k in keys if k in pretrained}}


def t5_tokenizer(folder, vocab_size=400):
    """A small sentencepiece-style BPE tokenizer in T5's layout (SigLIP's: <pad> 0, </s> 1, <unk> 2), saved
    in `folder`; its post-processor appends the end token, no start token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<pad>", "</s>", "<unk>"]
    tokenizer.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    wrapped.save_pretrained(folder)
    return wrapped


def gemma_tokenizer(folder, add_bos_token=False, vocab_size=400):
    """A small tokenizer in Gemma's layout, saved in `folder`: transformers' GemmaTokenizer (<pad> 0, <eos> 1,
    <bos> 2, <unk> 3, <mask> 4; spaces as "▁" starting the next word; byte fallback) with a vocabulary
    trained here. As SigLIP 2 reads Gemma's (open_clip's SigLipTokenizer "gemma"): the end token appended,
    no start token unless `add_bos_token`, padding on the right."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    trained = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    trained.normalizer = normalizers.Replace(" ", "▁")
    # merges inside words only, as Gemma's: "▁" starts a word and no merge crosses one
    trained.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    corpus = _CORPUS + ["x x x x x x x x"]  # a random context's placeholder "X X X X" (lowercased): one token each
    trained.train_from_iterator(corpus * 4, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    model = json.loads(trained.to_str())["model"]
    tokenizer = GemmaTokenizer(
        vocab=model["vocab"],
        merges=[tuple(m) for m in model["merges"]],
        add_bos_token=add_bos_token,
        add_eos_token=True,
        padding_side="right",
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def save_tiny_family(folder, family, seed=0):
    """Write the tiny `family` model as a local-dir folder; return `local-dir:<folder>`."""
    os.makedirs(folder, exist_ok=True)
    cfg = tiny_config(family)
    text = cfg["text_cfg"]
    if text.get("hf_tokenizer_name"):  # SigLIP: T5's layout (no start token); SigLIP 2: Gemma's
        tokenizer = gemma_tokenizer(folder) if family == "siglip2" else t5_tokenizer(folder)
        text["hf_tokenizer_name"] = "local"  # with local-dir:, open_clip reads the tokenizer from the folder
        text["vocab_size"] = len(tokenizer)
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": family_preprocess(family)}, f, indent=2)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.create_model(f"local-dir:{folder}")
    state = model.state_dict()
    if getattr(model, "logit_bias", None) is not None:
        state["logit_bias"] = torch.full_like(model.logit_bias, -2.0)  # nonzero, so a missing bias shows
    torch.save(state, os.path.join(folder, "open_clip_pytorch_model.bin"))
    return f"local-dir:{folder}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--family", choices=sorted(FAMILIES), default=None, help="default: all of them")
    args = parser.parse_args()
    for family in [args.family] if args.family else FAMILIES:
        print(save_tiny_family(os.path.join(args.out, family), family))


if __name__ == "__main__":
    main()
