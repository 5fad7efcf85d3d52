"""CLIP by name, open_clip tag or local file; its tokenizer; and the text encoder the prompt learners use.

`MODEL.BACKBONE.NAME` accepts
  * an OpenAI name (RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px):
    OpenAI's weights, from the original code's cache (~/.cache/clip) or open_clip's download;
  * a path to a checkpoint in OpenAI's layout (TorchScript archive or plain state dict, as the CLIP
    release ships them);
  * an open_clip `model:tag` name, e.g. `ViT-B-16:laion2b_s34b_b88k`, of any family open_clip builds
    (SigLIP / SigLIP 2, EVA02, MetaCLIP, DFN, MobileCLIP, PE; `model:/path/to/weights` for a local file);
  * open_clip's `local-dir:/path/to/folder` (open_clip_config.json, weights and tokenizer files) or
    `hf-hub:org/repo`.
The model's own tokenizer (open_clip.get_tokenizer) is attached to it; text_tower.py reads the rest.
"""

import functools
import logging
import os
import pickle
import shlex
import warnings
import zipfile

import open_clip
import torch
import torch.nn as nn
from open_clip.model import build_model_from_openai_state_dict, convert_weights_to_lp

from dasslite.errors import ConfigError, UserError

from .text_tower import attach_tokenizer, project, text_tower
from .transformer_blocks import run_blocks

logger = logging.getLogger(__name__)

CONTEXT_LENGTH = 77
# OpenAI name -> (open_clip model name, file name of OpenAI's release)
OPENAI_MODELS = {
    "RN50": ("RN50", "RN50.pt"),
    "RN101": ("RN101", "RN101.pt"),
    "RN50x4": ("RN50x4", "RN50x4.pt"),
    "RN50x16": ("RN50x16", "RN50x16.pt"),
    "RN50x64": ("RN50x64", "RN50x64.pt"),
    "ViT-B/32": ("ViT-B-32", "ViT-B-32.pt"),
    "ViT-B/16": ("ViT-B-16", "ViT-B-16.pt"),
    "ViT-L/14": ("ViT-L-14", "ViT-L-14.pt"),
    "ViT-L/14@336px": ("ViT-L-14-336", "ViT-L-14-336px.pt"),
}
# open_clip's own name schemas: the model's config, weights and tokenizer come from the folder / repo.
SCHEMAS = ("local-dir:", "hf-hub:")
# Where the original code (and OpenAI's `clip` package) caches downloaded weights.
OPENAI_CACHE = os.path.expanduser("~/.cache/clip")


class BackboneNotFoundError(UserError, FileNotFoundError):
    """MODEL.BACKBONE.NAME names no known CLIP and no file; the message lists the valid names."""


def load_clip(name, precision="fp32", device="cpu"):
    """Return CLIP in eval mode, stored in `precision` (to_precision)."""
    if os.path.isfile(os.path.expanduser(name)):
        model = load_openai_checkpoint(os.path.expanduser(name))
    elif name in OPENAI_MODELS:
        model = _load_openai_by_name(name)
    elif ":" in name:
        model = _load_open_clip_tag(name)
    else:
        raise BackboneNotFoundError(_unknown_backbone_message(name))
    if getattr(model, "tokenizer", None) is None:  # OpenAI's architecture: CLIP's BPE at its context length
        attach_tokenizer(model, open_clip.tokenizer.SimpleTokenizer(context_length=model.context_length), name)
    return to_precision(model, precision).to(device).eval()


def to_precision(model, precision):
    """CLIP (as built from OpenAI's files: fp16) stored in `precision`: fp16 as built, fp32, or bf16 for
    the same weights OpenAI's conversion makes fp16 (the embeddings and norms stay fp32)."""
    if precision != "fp16":
        model.float()
    if precision == "bf16":
        convert_weights_to_lp(model, dtype=torch.bfloat16)
    return model


def check_backbone_name(name):
    """Raise BackboneNotFoundError, listing the valid names, when load_clip could not even try `name`.

    Cheap (no weights are read), so train.py checks it before writing anything.
    """
    if os.path.isfile(os.path.expanduser(name)) or name in OPENAI_MODELS or name.startswith(SCHEMAS):
        return
    if ":" not in name or name.split(":", 1)[0] not in open_clip.list_models():
        raise BackboneNotFoundError(_unknown_backbone_message(name))


def load_openai_checkpoint(path):
    """Build CLIP from OpenAI's release file: a TorchScript archive or a plain state dict.

    Only the weights are taken from a TorchScript archive; the model is rebuilt eagerly (as the
    original code does), with OpenAI's fp16 conversion applied.
    """
    try:
        state_dict = _read_weights(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as e:
        raise ConfigError(
            f'"{path}" cannot be read as CLIP weights ({type(e).__name__}); give OpenAI\'s .pt '
            f"release file (or a state dict in its layout) as the backbone"
        ) from None
    if not isinstance(state_dict, dict):
        raise ConfigError(f'"{path}" holds a {type(state_dict).__name__}, not CLIP weights in OpenAI\'s layout')
    if "state_dict" in state_dict and "visual.conv1.weight" not in state_dict:
        state_dict = {k.removeprefix("module."): v for k, v in state_dict["state_dict"].items()}
    if "token_embedding.weight" not in state_dict:
        raise ConfigError(f'"{path}" is not a CLIP checkpoint in OpenAI\'s layout (no "token_embedding.weight" key)')
    return build_model_from_openai_state_dict(dict(state_dict))


def _read_weights(path):
    if is_torchscript_archive(path):
        with warnings.catch_warnings():  # torch deprecates jit.load, but these archives need it to be read
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
            return torch.jit.load(path, map_location="cpu").state_dict()
    return torch.load(path, map_location="cpu", weights_only=True)


def is_torchscript_archive(path):
    """True for a TorchScript zip (OpenAI's .pt releases): it holds constants.pkl, which is how torch
    itself tells one from a torch.save file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1] == "constants.pkl" for name in archive.namelist())


def _load_openai_by_name(name):
    oc_name, filename = OPENAI_MODELS[name]
    cached = os.path.join(OPENAI_CACHE, filename)
    if os.path.isfile(cached):
        return load_openai_checkpoint(cached)
    try:
        return open_clip.create_model(
            oc_name, pretrained="openai", precision="fp16" if torch.cuda.is_available() else "fp32"
        )
    except Exception as err:  # network or hub failure: say exactly what to fetch instead
        url = open_clip.get_pretrained_url(oc_name, "openai")
        raise BackboneNotFoundError(
            f'Could not load CLIP "{name}" ({type(err).__name__}: {err}). Without network access, download '
            f"{url} elsewhere, copy it to {cached} (the original code's cache) or anywhere else, and set "
            f"MODEL.BACKBONE.NAME /path/to/{filename}"
        ) from err


def _load_open_clip_schema(name):
    try:
        model = open_clip.create_model(name)
    except Exception as err:
        raise BackboneNotFoundError(f'Could not load open_clip "{name}" ({type(err).__name__}: {err})') from err
    return attach_tokenizer(model, family_tokenizer(name), name)


def _load_open_clip_tag(name):
    if name.startswith(SCHEMAS):
        return _load_open_clip_schema(name)
    model_name, tag = name.split(":", 1)
    if model_name not in open_clip.list_models():
        raise BackboneNotFoundError(_unknown_backbone_message(name))
    try:
        model = open_clip.create_model(model_name, pretrained=tag)
    except Exception as err:
        raise BackboneNotFoundError(
            f'Could not load open_clip "{model_name}" with weights "{tag}" ({type(err).__name__}: {err}). '
            f"Valid tags for {model_name}: {', '.join(open_clip.list_pretrained_tags_by_model(model_name))}. "
            f"Without network access, fetch the weights elsewhere and set MODEL.BACKBONE.NAME "
            f"{model_name}:/path/to/weights (open_clip accepts a file path as the tag)."
        ) from err
    return attach_tokenizer(model, family_tokenizer(model_name), model_name)


def family_tokenizer(model_name):
    """open_clip's tokenizer for `model_name` (SigLIP's and Gemma's come from the Hugging Face hub)."""
    try:
        return open_clip.get_tokenizer(model_name)
    except Exception as err:
        raise BackboneNotFoundError(
            f'Could not load the tokenizer of open_clip "{model_name}" ({type(err).__name__}: {err}); its '
            "tokenizer needs the transformers package and, once, the Hugging Face hub (or its cache)"
        ) from err


def _unknown_backbone_message(name):
    return (
        f'Unknown MODEL.BACKBONE.NAME "{name}": not a file, not an OpenAI name '
        f"({', '.join(OPENAI_MODELS)}) and not an open_clip model:tag pair "
        f"(e.g. ViT-B-16:laion2b_s34b_b88k; models: {', '.join(open_clip.list_models()[:8])}, ...)."
    )


def clip_dtype(clip_model):
    """The dtype CLIP computes in (OpenAI's definition: that of the image tower's first conv)."""
    return image_dtype(clip_model.visual)


def image_dtype(visual):
    """The dtype an image tower takes: its first conv's (OpenAI's ViT and ResNet), else its first weight's
    (timm towers: EVA02, MobileCLIP, PE, SigLIP)."""
    conv1 = getattr(visual, "conv1", None)
    return conv1.weight.dtype if conv1 is not None else next(visual.parameters()).dtype


def draw_dtype(clip_model):
    """The dtype random initial prompts are drawn in: CLIP's, as the original draws them (fp16 or fp32),
    but fp32 when CLIP is stored in bf16 (a CPU run's PREC bf16, which the original never had), so that
    a seed starts bf16 and fp32 runs at the same prompts."""
    dtype = clip_dtype(clip_model)
    return torch.float32 if dtype == torch.bfloat16 else dtype


def image_resolution(clip_model):
    size = clip_model.visual.image_size
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)


def check_input_size(size, clip_model):
    """CLIP's positional embeddings fix the input resolution; a mismatch would fail deep in the encoder."""
    expected = image_resolution(clip_model)
    if tuple(size) != expected:
        raise ConfigError(
            f"INPUT.SIZE is {tuple(size)} but this CLIP backbone takes {expected} images; set "
            f"INPUT.SIZE {shlex.quote(str(expected))}"  # quoted: the shell would read the brackets
        )


def image_tower(visual, image):
    """visual(image) for the frozen image encoder; a ViT stored in bf16 runs its blocks through run_blocks.

    In train mode (CoOp's and CoCoOp's training steps) attention takes its general path, where a
    batch-first nn.MultiheadAttention projects its transposed input position by position
    (transformer_blocks.sequence_first): in bf16 on a CPU that copy took most of a training step.
    run_blocks runs those blocks sequence-first. fp32 and fp16 keep open_clip's own forward: the
    sequence-first products can round differently in the last bit at some widths, and their numbers
    stay those of earlier runs.
    """
    if image.dtype != torch.bfloat16 or not isinstance(visual, open_clip.transformer.VisionTransformer):
        return visual(image)
    x = run_blocks(visual.transformer, visual._embeds(image))
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj if visual.proj is not None else pooled


class TextEncoder(nn.Module):
    """A CLIP's text transformer applied to already-embedded prompts, for any open_clip family (text_tower.py).

    `forward(prompts, token_ids)` takes prompt embeddings (N, L, width) and the matching token ids
    (N, context_length) and returns text features (N, embed_dim) read at each prompt's pooled position
    (the model's pool type), after the final norm and the projection.

    Trimming: under a causal mask only positions up to the last pooled one can change the result, so
    later ones are never computed; without a causal mask (SigLIP, MobileCLIP) every position runs.
    Chunking: at most `chunk_size` prompts go through the transformer at once (0 = all), which bounds
    activation memory; with `checkpoint=True` each chunk's activations are recomputed in backward
    instead of stored.
    """

    def __init__(self, clip_model, trim=True):
        super().__init__()
        tower = text_tower(clip_model)
        self.transformer = tower.transformer
        self.positional_embedding = tower.positional_embedding
        self.ln_final = tower.ln_final
        self.text_projection = tower.text_projection
        self.dtype = clip_dtype(clip_model)
        self.trim = trim
        self.tower = tower

    def used_length(self, token_ids):
        """How many leading positions the prompts need (all of them without trimming)."""
        return self.tower.used_length(token_ids, self.trim)

    def forward(self, prompts, token_ids, chunk_size=0, checkpoint=False, deep_prompts=()):
        """`deep_prompts` are handed to `run_transformer` (the plain encoder takes none)."""
        length = min(self.used_length(token_ids), prompts.shape[1])
        token_ids = token_ids.to(prompts.device)
        prompts = prompts[:, :length]
        step = chunk_size if chunk_size > 0 else prompts.shape[0]
        encode = functools.partial(self._encode, deep_prompts=deep_prompts) if deep_prompts else self._encode
        outs = []
        for start in range(0, prompts.shape[0], step):
            chunk, chunk_ids = prompts[start : start + step], token_ids[start : start + step]
            if checkpoint and torch.is_grad_enabled():
                outs.append(torch.utils.checkpoint.checkpoint(encode, chunk, chunk_ids, use_reentrant=False))
            else:
                outs.append(encode(chunk, chunk_ids))
        return torch.cat(outs)

    def run_transformer(self, x, mask, deep_prompts=()):
        """The transformer over batch-first embeddings x (N, L, width); its blocks run sequence-first, as
        in OpenAI's CLIP, since the causal mask keeps attention on its general path (see
        transformer_blocks.runs_sequence_first: the same numbers, without a per-position input projection)."""
        if deep_prompts:
            raise ValueError("this text encoder takes no deep prompts; use prompted_encoders.PromptedTextEncoder")
        return run_blocks(self.transformer, x, mask)

    def _encode(self, x, token_ids, deep_prompts=()):
        length = x.shape[1]
        x = x.to(self.dtype) + self.positional_embedding[:length].to(self.dtype)
        x = self.run_transformer(x, self.tower.attention_mask(token_ids, length, x.device), deep_prompts)
        x = self.ln_final(x).to(self.dtype)
        x = x[torch.arange(x.shape[0], device=x.device), self.tower.pooled_positions(token_ids[:, :length])]
        return project(self.text_projection, x)
