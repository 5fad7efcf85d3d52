import pytest
import torch
from open_clip import tokenize  # open_clip's own CLIP BPE at 77 tokens: the reference

from coop_toolkit.trainers.clip_backbone import BackboneNotFoundError, TextEncoder, load_clip
from tools.tiny_clip import build_tiny_clip


def test_torchscript_and_state_dict_layouts_load_the_same_weights(tmp_path):
    from tools.tiny_clip import save_tiny_clip

    save_tiny_clip(tmp_path / "a.pt", fmt="jit", seed=3)
    save_tiny_clip(tmp_path / "b.pt", fmt="state_dict", seed=3)
    a, b = load_clip(str(tmp_path / "a.pt")), load_clip(str(tmp_path / "b.pt"))
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_loaded_model_matches_the_saved_one(tiny_clip_path):
    """Weights pass through OpenAI's fp16 conversion on load, so compare at fp16 resolution."""
    original = build_tiny_clip(seed=0)
    loaded = load_clip(tiny_clip_path)
    ids = tokenize(["a photo of a dog.", "a photo of a great pyrenees."])
    torch.testing.assert_close(loaded.encode_text(ids), original.encode_text(ids), atol=1e-2, rtol=0)
    assert loaded.token_embedding.weight.shape == (49408, 64)


def test_fp16_precision_keeps_openai_half_conversion(tiny_clip_path):
    model = load_clip(tiny_clip_path, precision="fp16")
    assert model.visual.conv1.weight.dtype == torch.float16
    assert model.token_embedding.weight.dtype == torch.float32  # OpenAI leaves embeddings in fp32


@pytest.mark.parametrize("name", ["ViT-B/17", "resnet50", "NotAModel:openai"])
def test_unknown_backbone_lists_valid_names(name):
    with pytest.raises(BackboneNotFoundError) as err:
        load_clip(name)
    assert name in str(err.value) and "ViT-B/16" in str(err.value)


def test_openai_name_without_network_names_the_file_to_get(monkeypatch, tmp_path):
    monkeypatch.setattr("coop_toolkit.trainers.clip_backbone.OPENAI_CACHE", str(tmp_path))
    with pytest.raises(BackboneNotFoundError) as err:
        load_clip("ViT-B/16")
    msg = str(err.value)
    assert "ViT-B-16.pt" in msg and "MODEL.BACKBONE.NAME" in msg and "openaipublic" in msg


def test_openai_name_is_found_in_the_original_codes_cache(monkeypatch, tmp_path):
    from tools.tiny_clip import save_tiny_clip

    save_tiny_clip(tmp_path / "RN50.pt", vision="rn", fmt="jit")
    monkeypatch.setattr("coop_toolkit.trainers.clip_backbone.OPENAI_CACHE", str(tmp_path))
    model = load_clip("RN50")
    assert model.visual.attnpool is not None


def test_trimmed_and_chunked_text_encoder_equals_full_length(tiny_clip_path):
    model = load_clip(tiny_clip_path)
    ids = tokenize(["a photo of a dog.", "itap of a very very long named class of things.", "x"])
    prompts = model.token_embedding(ids)
    full = TextEncoder(model, trim=False)(prompts, ids)
    trimmed = TextEncoder(model)
    assert trimmed.used_length(ids) == int(ids.argmax(-1).max()) + 1 < 77
    assert (trimmed(prompts, ids) - full).abs().max() <= 1e-4
    assert (trimmed(prompts, ids, chunk_size=1) - full).abs().max() <= 1e-4
    # and the same as open_clip's own text tower
    assert (model.encode_text(ids) - full).abs().max() <= 1e-4


@pytest.mark.parametrize("method", ["coop", "cocoop"])
def test_text_encoder_runs_sequence_first_with_the_same_numbers(tiny_clip_path, monkeypatch, method):
    """The causal mask keeps attention on its general path, where batch-first input reaches the input
    projection transposed (one product per position); sequence-first must change no bit of the logits
    (train and eval mode) or of ctx / Meta-Net after 2 SGD steps."""
    import importlib

    from benchmarks.sequence_first_check import train_two_steps
    from benchmarks.speed import learn_only
    from coop_toolkit.trainers import transformer_blocks
    from tests.trainers.helpers import CLASSNAMES, make_cfg

    module = importlib.import_module(f"coop_toolkit.trainers.{method}")
    key = method.upper()
    cfg = make_cfg(tiny_clip_path, **{f"TRAINER.{key}.N_CTX": 4, f"TRAINER.{key}.CTX_INIT": "a photo of a"})
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 4])

    def build():
        return learn_only(module.CustomCLIP(cfg, CLASSNAMES, load_clip(tiny_clip_path)))

    switched, seen_on = train_two_steps(build, images, labels)
    monkeypatch.setattr(transformer_blocks, "_general_path", lambda transformer, mask: False)
    batch_first, seen_off = train_two_steps(build, images, labels)
    assert seen_on == {True}, seen_on  # train and eval, grad or not: contiguous (L, N, D)
    assert seen_off == {False}, seen_off  # batch-first: nn.MultiheadAttention transposes it
    assert len(switched) == len(batch_first) >= 3
    for (label, a), (_, b) in zip(switched, batch_first):
        assert torch.equal(a, b), label
    assert not torch.equal(switched[2][1], build().prompt_learner.ctx.detach())  # the steps did move ctx
