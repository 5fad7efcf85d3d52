"""The text-tower seam: what a prompt learner needs from a CLIP's text side, read from the open_clip model
and its own tokenizer, whatever the family.

open_clip keeps the text tower at the top level of a `CLIP` (OpenAI's architecture: `transformer`,
`token_embedding`, `ln_final`, ...) and under `.text` in a `CustomTextCLIP` (SigLIP, EVA02,
MobileCLIP, PE, ...). Families differ in what `TextTower` reads:

* the tokenizer (CLIP's BPE, SigLIP's sentencepiece, Gemma's) and its context length (77, 64, 32);
* the special tokens around the text: `lead` positions before it (CLIP's start-of-text; none for
  SigLIP), then the text, then the end token, then padding;
* the pooled position: `argmax` of the ids (CLIP: its end-of-text id is the largest id), `eos` (the
  first end id), `last` (the last of the context positions, padding included: SigLIP) or `first`;
* the attention mask: causal (OpenAI, EVA02, PE) or none (SigLIP, MobileCLIP), plus a padding mask
  where the tower has `use_pad_mask`;
* the final norm, the projection (a matrix, or a Linear with bias), the logit scale and logit bias.

Prompt assembly (coop.py, cocoop.py, deep_prompt.py) puts learned context at positions
`lead .. lead + n_ctx`, right after the leading special tokens.
"""

import functools
import weakref

import open_clip
import torch
import torch.nn as nn

from dasslite.errors import ConfigError

_TOWERS = weakref.WeakKeyDictionary()  # clip model -> its TextTower (the tokenizer probe runs once)
OPENAI_VOCAB_SIZE = 49408  # CLIP's BPE vocabulary: a model with it and no tokenizer of its own reads BPE


class UnsupportedBackboneError(ConfigError):
    """The backbone lacks what a method needs (a text transformer, a ViT to prompt); the message says why."""


def attach_tokenizer(clip_model, tokenizer, name):
    """Record the model's own tokenizer and open_clip name on the model (load_clip does this)."""
    clip_model.tokenizer = tokenizer
    clip_model.open_clip_name = name
    _TOWERS.pop(clip_model, None)
    return clip_model


def text_tower(clip_model):
    """The model's TextTower, built once per model."""
    tower = _TOWERS.get(clip_model)
    if tower is None:
        tower = _TOWERS[clip_model] = TextTower(clip_model)
    return tower


def model_name(clip_model):
    return getattr(clip_model, "open_clip_name", None) or type(clip_model).__name__


class TextTower:
    """One CLIP's text side: modules, tokenizer, special-token layout, pooling and mask."""

    def __init__(self, clip_model, tokenizer=None):
        text = getattr(clip_model, "text", clip_model)  # CustomTextCLIP keeps the tower under .text
        name = model_name(clip_model)
        if not hasattr(text, "transformer") or not hasattr(text, "token_embedding"):
            raise UnsupportedBackboneError(
                f"{name}: its text tower is a {type(text).__name__} (e.g. a Hugging Face encoder), not open_clip's "
                "TextTransformer, so prompts cannot be put into it; use a model whose text tower is open_clip's"
            )
        if getattr(text, "cls_emb", None) is not None:
            raise UnsupportedBackboneError(
                f"{name}: its text tower appends a class token (CoCa), which prompt learning here does not support"
            )
        self.name = name
        self.transformer = text.transformer
        self.token_embedding = text.token_embedding
        self.positional_embedding = text.positional_embedding
        self.ln_final = text.ln_final
        self.text_projection = text.text_projection
        self.context_length = self.positional_embedding.shape[0]
        self.width = self.ln_final.weight.shape[0]
        self.embed_dim = _output_width(self.text_projection, self.width)  # = the image features' width
        self.heads = self.transformer.resblocks[0].attn.num_heads
        self.pool_type = getattr(text, "pool_type", None) or getattr(clip_model, "text_pool_type", "argmax")
        self.eos_id = getattr(text, "eos_id", getattr(clip_model, "text_eos_id", None))
        self.causal = getattr(text, "attn_mask", None) is not None
        self.pad_id = getattr(text, "pad_id", 0)
        self.pad_mask = bool(getattr(text, "use_pad_mask", False))
        self.logit_scale = clip_model.logit_scale
        self.logit_bias = getattr(clip_model, "logit_bias", None)
        self._tokenizer = tokenizer or getattr(clip_model, "tokenizer", None)  # load_clip attaches it

    # ------------------------------------------------------------ tokens (read on first use)
    @functools.cached_property
    def tokenizer(self):
        return self._tokenizer or default_tokenizer(self)

    @functools.cached_property
    def _encode(self):
        return plain_encoder(self.tokenizer, self.name)

    @property
    def lead(self):
        return self._layout[0]

    @property
    def trail(self):
        return self._layout[1]

    @functools.cached_property
    def _layout(self):
        return self._special_layout()

    def tokenize(self, texts):
        """Token ids (N, context_length) from the model's own tokenizer; a text that does not fit is refused."""
        for text in texts:
            self.check_fits(text)
        return self.tokenizer(list(texts), context_length=self.context_length)

    def count_tokens(self, text):
        """Tokens of `text` without the special tokens."""
        return len(self._encode(text))

    def check_fits(self, text, key="prompt"):
        n = self.count_tokens(text) + self.lead + self.trail
        if n > self.context_length:
            raise ConfigError(
                f'{key} "{text}" has {n} tokens with its special tokens, but {self.name} reads '
                f"{self.context_length} (its context length); use fewer words or shorter class names"
            )

    def max_context(self):
        """The most learned context tokens that leave room for the special tokens and one class token."""
        return self.context_length - self.lead - self.trail - 1

    def embed(self, token_ids):
        return self.token_embedding(token_ids.to(self.token_embedding.weight.device))

    def _special_layout(self):
        """(tokens before the text, tokens after it), read from what the tokenizer makes of a probe."""
        probe = self._encode("a photo")
        row = self.tokenizer(["a photo"], context_length=self.context_length)[0].tolist()
        for lead in range(len(row) - len(probe) + 1):
            if row[lead : lead + len(probe)] == probe:
                after = row[lead + len(probe)] if lead + len(probe) < len(row) else None
                return lead, int(after is not None and after in self._special_ids())
        raise UnsupportedBackboneError(
            f"{self.name}: its tokenizer ({type(self.tokenizer).__name__}) does not keep a text's tokens together "
            f"between its special tokens, so prompts cannot be assembled from token embeddings"
        )

    def _special_ids(self):
        ids = {getattr(self.tokenizer, "eot_token_id", None), self.eos_id if self.pool_type == "eos" else None}
        inner = getattr(self.tokenizer, "tokenizer", None)
        if inner is not None:
            ids |= set(getattr(inner, "all_special_ids", ())) | {inner.eos_token_id}
        return ids - {None}

    # ------------------------------------------------------------ pooling and mask
    def pooled_positions(self, token_ids):
        """(N,) the position each prompt's features are read at, as open_clip's text_global_pool reads it."""
        n, length = token_ids.shape
        if self.pool_type == "argmax":
            return token_ids.argmax(dim=-1)
        if self.pool_type == "eos":
            return (token_ids == self.eos_id).int().argmax(dim=-1)
        if self.pool_type == "first":
            return torch.zeros(n, dtype=torch.long, device=token_ids.device)
        if self.pool_type == "last":
            return torch.full((n,), length - 1, dtype=torch.long, device=token_ids.device)
        raise UnsupportedBackboneError(f'{self.name}: text pool type "{self.pool_type}" gives no single feature')

    def used_length(self, token_ids, trim=True):
        """Leading positions the prompts need: under a causal mask, up to the last pooled position
        (later positions cannot reach it); otherwise every position (each one attends to all)."""
        if trim and self.causal:
            return int(self.pooled_positions(token_ids).max()) + 1
        return token_ids.shape[1]

    def attention_mask(self, token_ids, length, device):
        """The additive mask the tower applies to `length` positions, as open_clip builds it, or None."""
        mask = causal_mask(length, device) if self.causal else None
        if self.pad_mask:
            keep = (token_ids[:, :length] != self.pad_id).to(device)
            pad = torch.zeros(keep.shape[0], length, length, device=device)
            pad = pad.masked_fill_(~keep.unsqueeze(1), float("-inf")).repeat_interleave(self.heads, 0)
            mask = pad if mask is None else mask.unsqueeze(0) + pad
        return mask


def causal_mask(length, device):
    mask = torch.full((length, length), float("-inf"), device=device)
    return mask.triu_(1)


def default_tokenizer(tower):
    """For a model without an attached tokenizer: CLIP's BPE when it has OpenAI's vocabulary."""
    if tower.token_embedding.num_embeddings == OPENAI_VOCAB_SIZE:
        return open_clip.tokenizer.SimpleTokenizer(context_length=tower.context_length)
    raise UnsupportedBackboneError(
        f"{tower.name}: no tokenizer is known for this model (vocabulary of {tower.token_embedding.num_embeddings}); "
        "load it with load_clip, which attaches open_clip.get_tokenizer's, or call attach_tokenizer"
    )


def plain_encoder(tokenizer, name):
    """text -> its token ids without special tokens, through the tokenizer's own cleaning and vocabulary."""
    if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
        return tokenizer.encode
    inner = getattr(tokenizer, "tokenizer", None)  # open_clip's HFTokenizer / SigLipTokenizer wrap a HF one
    if inner is not None and getattr(tokenizer, "tokenizer_mode", "") in ("", None):
        clean = getattr(tokenizer, "clean_fn", None) or _siglip_clean
        return lambda text: list(inner(clean(text), add_special_tokens=False)["input_ids"])
    raise UnsupportedBackboneError(
        f"{name}: its tokenizer ({type(tokenizer).__name__}) is not one prompts can be assembled with "
        "(open_clip's SimpleTokenizer, HFTokenizer or SigLipTokenizer)"
    )


def _siglip_clean(text):
    from open_clip.tokenizer import basic_clean, canonicalize_text

    return canonicalize_text(basic_clean(text))


def _output_width(text_projection, width):
    if text_projection is None:
        return width
    if isinstance(text_projection, nn.Linear):
        return text_projection.out_features
    return text_projection.shape[1]


def project(text_projection, x):
    """x (N, width) through the text projection: a matrix, or a Linear (with bias: SigLIP)."""
    if text_projection is None:
        return x
    if isinstance(text_projection, nn.Linear):
        return text_projection(x)
    return x @ text_projection.to(x.dtype)
