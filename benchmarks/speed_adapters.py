"""speed.py's rows for CLIP-Adapter, Tip-Adapter-F and CLIP-LoRA: ours against the authors' computation.

The authors' computations, written plainly on the same modules and weights:
- CLIP-Adapter (gaopengcuhk/CLIP-Adapter/clip_adapter.py): the hand-written class prompts re-encoded
  at all 77 positions at every call (their TextEncoder runs in every forward), the adapter mixed into
  the raw image features before normalising. Ours encodes the class prompts once.
- Tip-Adapter-F (gaopengcuhk/Tip-Adapter/main.py): the image features under no_grad, the adapter's
  affinities, ((-1) * (beta - beta * A)).exp() @ values + 100 f W. Ours is the same computation.
- CLIP-LoRA (MaxZanella/CLIP-LoRA/loralib/layers.py): every adapted attention computes q, k and v with
  three separate projections (plus their LoRA branch in training, the merged weight in eval),
  scaled_dot_product_attention and the output projection; the towers run sequence-first, the text at
  all 77 positions, and the class features are encoded at every training step and once per
  evaluation. Ours keeps open_clip's packed in_proj (one projection for q, k, v), trims the text to the
  longest end-of-text position, and evaluates through torch's multi_head_attention_forward.
"""

import copy

import torch
import torch.nn.functional as F
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from benchmarks.cases import Case, speed_cases
from benchmarks.speed_deep import authors_text_features
from coop_toolkit import trainers
from coop_toolkit.trainers.clip_adapter import AdapterCLIP
from coop_toolkit.trainers.clip_lora import LOGIT_SCALE, LoRACLIP
from coop_toolkit.trainers.handwritten import handwritten_class_features
from coop_toolkit.trainers.tip_adapter import TipAdapterCLIP
from dasslite.config import get_cfg_default

TEMPLATE = "a photo of a {}."
SHOTS = 16  # Tip-Adapter's cache: 16 entries per class


def learn_only(model, prefix):
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefix))
    return model


# ---- CLIP-Adapter ------------------------------------------------------------------------------------


def build_clip_adapter(clip_model, classnames):
    text = handwritten_class_features(clip_model, classnames, [TEMPLATE])
    model = AdapterCLIP(clip_model, text, ratio=0.2, reduction=4)
    model.reference_token_ids = tokenize([TEMPLATE.format(c) for c in classnames]).to(text.device)
    model.reference_text = trainers.clip_backbone.TextEncoder(clip_model)
    model.reference_embedding = clip_model.token_embedding
    return learn_only(model, "adapter.")


def clip_adapter_reference(model, images):
    """Theirs: raw image features, adapter, 0.2 / 0.8 mix, then both sides normalised; the class prompts
    encoded at 77 tokens in every forward."""
    enc = model.reference_text
    f = model.image_encoder(images.to(enc.dtype)).float()
    f = 0.2 * model.adapter(f) + 0.8 * f
    ids = model.reference_token_ids
    text = authors_text_features(enc, model.reference_embedding(ids), ids).float()
    f, text = f / f.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
    return model.logit_scale.exp() * f @ text.t()


# ---- Tip-Adapter-F ------------------------------------------------------------------------------------


def build_tip_adapter_f(clip_model, classnames):
    text = handwritten_class_features(clip_model, classnames, [TEMPLATE])
    model = TipAdapterCLIP(clip_model, text, len(classnames))
    generator = torch.Generator().manual_seed(0)
    keys = F.normalize(torch.randn(len(classnames) * SHOTS, text.shape[1], generator=generator), dim=-1)
    labels = torch.arange(len(classnames)).repeat_interleave(SHOTS)
    model.cache.set_cache(keys.to(text.device), F.one_hot(labels, len(classnames)).to(text.device))
    model.cache.alpha.fill_(1.17)
    return learn_only(model, "cache.adapter.")


def tip_adapter_f_reference(model, images):
    """Theirs (run_tip_adapter_F): features under no_grad, normalised; affinity = adapter(f);
    ((-1) * (beta - beta * affinity)).exp() @ cache_values; 100 * f @ clip_weights ([D, C])."""
    with torch.no_grad():
        f = model.image_encoder(images.to(model.image_encoder.conv1.weight.dtype)).float()
        f = f / f.norm(dim=-1, keepdim=True)
    affinity = model.cache.adapter(f)
    cache_logits = ((-1) * (model.cache.beta - model.cache.beta * affinity)).exp() @ model.cache.values
    clip_weights = model.text_features.t()
    return 100.0 * f @ clip_weights + model.cache.alpha * cache_logits


# ---- CLIP-LoRA ----------------------------------------------------------------------------------------


def build_clip_lora(clip_model, classnames):
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    model = LoRACLIP(copy.deepcopy(clip_model), classnames, cfg.TRAINER.CLIP_LORA)  # LoRA replaces attention
    with torch.no_grad():  # B starts at zero; a trained-looking B makes the comparison mean something
        generator = torch.Generator().manual_seed(0)
        for name, p in model.lora.named_parameters():
            if name.endswith("w_lora_B"):
                p.copy_(0.02 * torch.randn(p.shape, generator=generator))
    model._reference_text_cache = None
    return learn_only(model, "lora.")


def _their_projection(x, weight, bias, lora, scaling):
    """Their LinearLoRA: the frozen Linear, plus (dropout(x) @ A.T @ B.T) * scaling in training; in eval
    the merged weight (they merge once, into weight.data, when the model goes to eval)."""
    if lora is None:
        return F.linear(x, weight, bias)
    a, b = lora.w_lora_A.to(x.dtype), lora.w_lora_B.to(x.dtype)  # fp32 pairs beside an fp16 CLIP (--prec fp16)
    if lora.training:
        return F.linear(x, weight, bias) + (lora.dropout(x) @ a.t() @ b.t()) * scaling
    return F.linear(x, weight + b @ a * scaling, bias)


def _their_attention(attn, x, mask):
    """PlainMultiheadAttentionLoRA.forward on sequence-first x (L, N, E): q, k, v apart, SDPA, proj."""
    base, (length, batch, width) = attn.base, x.shape
    heads = base.num_heads
    weights, biases = base.in_proj_weight.chunk(3), base.in_proj_bias.chunk(3)
    names = ("q_proj", "k_proj", "v_proj")
    q, k, v = (
        _their_projection(x, w, b, getattr(attn, n, None), attn.scaling).view(length, batch * heads, -1).transpose(0, 1)
        for w, b, n in zip(weights, biases, names)
    )
    out = F.scaled_dot_product_attention(
        q.view(batch, heads, length, -1),
        k.view(batch, heads, length, -1),
        v.view(batch, heads, length, -1),
        attn_mask=mask,
    )
    out = out.permute(2, 0, 1, 3).reshape(length, batch, width)
    return _their_projection(out, base.out_proj.weight, base.out_proj.bias, getattr(attn, "proj", None), attn.scaling)


def _their_blocks(transformer, x, mask=None):
    x = x.permute(1, 0, 2)  # (L, N, D), as OpenAI's CLIP in their code
    for block in transformer.resblocks:
        x = x + _their_attention(block.attn, block.ln_1(x), mask)
        x = x + block.mlp(block.ln_2(x))
    return x.permute(1, 0, 2)


def _their_image(visual, images):
    x = visual.conv1(images.to(visual.conv1.weight.dtype)).flatten(2).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
    x = visual.ln_pre(x + visual.positional_embedding.to(x.dtype))
    x = visual.ln_post(_their_blocks(visual.transformer, x)[:, 0]) @ visual.proj
    return F.normalize(x.float(), dim=-1)


def _their_text(model):
    enc, ids = model.text_encoder, model.token_ids
    x = model.token_embedding(ids).to(enc.dtype) + enc.positional_embedding.to(enc.dtype)
    mask = torch.full((x.shape[1], x.shape[1]), float("-inf"), device=x.device).triu_(1).to(x.dtype)
    x = enc.ln_final(_their_blocks(enc.transformer, x, mask))
    return F.normalize((x[torch.arange(x.shape[0]), ids.argmax(-1)] @ enc.text_projection).float(), dim=-1)


def clip_lora_reference(model, images):
    """Theirs: the class features at every training step; in eval once per evaluation (here: once per
    state of the LoRA weights, as an evaluation loop over the test set would)."""
    if model.lora.training:
        text = _their_text(model)
    else:
        key = tuple(p._version for p in model.lora.parameters())
        if model._reference_text_cache is None or model._reference_text_cache[0] != key:
            model._reference_text_cache = (key, _their_text(model))
        text = model._reference_text_cache[1]
    return LOGIT_SCALE * _their_image(model.image_encoder, images) @ text.t()


# The authors' batches (CLIP-Adapter: CoOp's 32; Tip-Adapter-F: 256, 16 shots per class in the cache;
# CLIP-LoRA: 32).
speed_cases("CLIP_Adapter", Case("CLIP-Adapter", build_clip_adapter, clip_adapter_reference, batch=32, classes=100))
speed_cases(
    "Tip_Adapter_F", Case("Tip-Adapter-F", build_tip_adapter_f, tip_adapter_f_reference, batch=256, classes=100)
)
speed_cases("CLIP_LoRA", Case("CLIP-LoRA", build_clip_lora, clip_lora_reference, batch=32, classes=100))
