"""PREC bf16 on a CPU: the frozen CLIP stored and run in bf16, the learned parameters in fp32, for every trainer.

A CPU with native bf16 is simulated (`precision.cpu_flags`), so the checks run on any machine; the last
tests take it away and expect the fp32 fallback with its one warning line.
"""

import logging

import pytest
import torch
import torch.nn as nn

from coop_toolkit.trainers import precision
from tests.datasets.layouts import build_oxford_pets
from tests.precision_matrix import (
    GPU_LAYERS,
    build,
    copy_learned_state,
    eval_logits,
    is_trainable,
    save_small_clip,
    toolkit_trainers,
)

CPU = torch.device("cpu")
# Bound on max |logit - fp32 logit| / max(1, max |fp32 logit|). Stored in bf16, every block's output is
# rounded to bf16 (autocast on a GPU keeps fp32 weights and some fp32 outputs): measured on the 12-layer
# tiny CLIP, 1.1e-2 (zero-shot) to 3.5e-2 (CoOp), and 8.7e-2 for VPT, whose prompts enter all 12
# image blocks. ViT-B/16 sizes: benchmarks/README.md (CPU).
BF16_STORED_TOLERANCE = 1e-1


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_oxford_pets(str(root))
    return str(root)


@pytest.fixture(scope="module")
def clip_12_layers(tmp_path_factory):
    """As deep as ViT-B/16, so every shipped PROMPT_DEPTH fits."""
    return save_small_clip(tmp_path_factory.mktemp("clip") / "tiny-64px-12-layers.pt", GPU_LAYERS)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"fpu", "avx512_bf16"}))


def towers(trainer):
    """The frozen image tower and text transformer the trainer computes with (the image tower alone for a
    model that encodes its class prompts once, at build: CLIP-Adapter, Tip-Adapter)."""
    clip = getattr(trainer, "clip_model", None)
    if clip is not None:  # zero-shot CLIP
        return clip.visual, clip.transformer
    text = getattr(trainer.model, "text_encoder", None)
    return (trainer.model.image_encoder,) + ((text.transformer,) if text is not None else ())


def close(got, expected):
    return (got - expected).abs().max().item() <= BF16_STORED_TOLERANCE * max(1.0, expected.abs().max().item())


def tower_weights(tower):
    for module in tower.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            yield module.weight
        if isinstance(module, nn.MultiheadAttention):
            yield module.in_proj_weight


def record_block_outputs(tower_blocks, seen):
    return [block.register_forward_hook(lambda m, args, out: seen.add(out.dtype)) for block in tower_blocks]


@pytest.mark.parametrize("name", toolkit_trainers())
def test_bf16_on_cpu_runs_the_frozen_towers_in_bf16_and_learns_in_fp32(
    name,
    native_bf16,
    pets,
    clip_12_layers,
    tmp_path,
):
    torch.manual_seed(0)
    low = build(name, "bf16", CPU, pets, clip_12_layers, tmp_path / "bf16")
    ref = build(name, "fp32", CPU, pets, clip_12_layers, tmp_path / "fp32")
    assert low.prec == "bf16"
    image_tower, *text_transformer = towers(low)
    for tower in (image_tower, *text_transformer):
        weights = list(tower_weights(tower))
        assert weights and all(w.dtype == torch.bfloat16 for w in weights)
    seen = set()
    last_blocks = [tower.resblocks[-1] for tower in (image_tower.transformer, *text_transformer)]
    hooks = record_block_outputs(last_blocks, seen)
    if is_trainable(name):
        learned = low.learned_parameters()
        assert learned and all(p.dtype == torch.float32 for p in learned.values())
        # a random context is drawn in fp32 when CLIP is stored in bf16: a seed starts both runs alike
        reference = ref.learned_parameters()
        if type(low).learned_init_from_data:  # e.g. Tip-Adapter-F's keys: bf16 features of the same images
            assert all(close(p, reference[n]) for n, p in learned.items())
        else:
            assert all(torch.equal(p, reference[n]) for n, p in learned.items())
        low.set_model_mode("train")
        summary = low.forward_backward(next(iter(low.train_loader_x)))
        assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
        graded = {n for n, p in low.model.named_parameters() if p.grad is not None}
        assert graded == set(learned)
        assert any(p.grad.abs().sum() > 0 for p in learned.values())
        copy_learned_state(low, ref)
    got, expected = eval_logits(low), eval_logits(ref)
    for hook in hooks:
        hook.remove()
    assert seen == {torch.bfloat16}, f"{name}: the towers' blocks gave {seen}"
    diff = (got - expected).abs().max().item() / max(1.0, expected.abs().max().item())
    assert diff <= BF16_STORED_TOLERANCE, f"{name}: max |logit - fp32 logit| / max |logit| = {diff:.2e}"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert precision.native_bf16_flag({"fpu", "sse2", "avx512_bf16"}) == "avx512_bf16"
    assert precision.native_bf16_flag({"amx_bf16", "avx512_bf16"}) == "amx_bf16"
    assert precision.native_bf16_flag({"fp", "asimd", "bf16"}) == "bf16"  # Arm's Features line
    assert precision.native_bf16_flag({"fpu", "sse2", "avx512f"}) is None


def test_without_native_bf16_a_cpu_runs_fp32_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"fpu", "avx2"}))
    precision._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING):
        assert precision.resolve_precision("bf16", CPU, "TRAINER.COOP.PREC") == "fp32"
        assert precision.resolve_precision("bf16", CPU, "TRAINER.COOP.PREC") == "fp32"
    lines = [r.getMessage() for r in caplog.records if "no native bf16" in r.getMessage()]
    assert len(lines) == 1 and "TRAINER.COOP.PREC bf16" in lines[0] and "running in fp32" in lines[0]


def test_without_native_bf16_the_trainer_builds_in_fp32(monkeypatch, pets, tmp_path):
    from tests.precision_matrix import CPU_LAYERS

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"fpu", "avx2"}))
    clip = save_small_clip(tmp_path / "clip.pt", CPU_LAYERS)
    trainer = build("CoOp", "bf16", CPU, pets, clip, tmp_path / "run")
    assert trainer.prec == "fp32"
    assert all(w.dtype == torch.float32 for tower in towers(trainer) for w in tower_weights(tower))
