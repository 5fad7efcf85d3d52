"""Every trainer on a GPU: PREC fp16 / amp / bf16 training steps, checkpoint and eval-only, torchrun with nccl.

The tests marked `cuda` are skipped without CUDA (benchmarks/gpu_check.sh runs them on a GPU). Each has
a CPU twin below that runs the same check (tests/precision_matrix.py) on the CPU, with the fp32
fallback lifted so fp16 and amp really run in half precision there too.
"""

import pytest
import torch

from tests.datasets.layouts import build_oxford_pets
from tests.precision_matrix import (
    CPU_LAYERS,
    GPU_LAYERS,
    check_checkpoint_and_eval_only,
    check_precision,
    forced_precision,
    save_small_clip,
    toolkit_trainers,
)
from tests.test_ddp import learned, torchrun

TRAINERS = toolkit_trainers()
MIXED = ["fp16", "amp", "bf16"]
CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_oxford_pets(str(root))
    return str(root)


@pytest.fixture(autouse=True)
def no_env_report(monkeypatch):
    """train.main's environment report shells out to pip and nvidia-smi (seconds per run); only the log reads it."""
    import dasslite.utils.tools

    # train.py imports it when it logs
    monkeypatch.setattr(dasslite.utils.tools, "collect_env_info", lambda: "(environment report skipped in tests)")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    return save_small_clip(tmp_path_factory.mktemp("clip") / "tiny-64px.pt", CPU_LAYERS)


@pytest.fixture(scope="module")
def deep_clip(tmp_path_factory):
    return save_small_clip(tmp_path_factory.mktemp("clip") / "tiny-64px-12-layers.pt", GPU_LAYERS)


def test_every_toolkit_trainer_is_covered():
    assert {"CoOp", "CoCoOp", "ZeroshotCLIP", "ZeroshotCLIP2"} <= set(TRAINERS)


@pytest.mark.cuda
@pytest.mark.parametrize("prec", MIXED)
@pytest.mark.parametrize("name", TRAINERS)
def test_training_steps_under_mixed_precision_on_cuda(name, prec, pets_root, deep_clip, tmp_path):
    if prec == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    check_precision(name, prec, CUDA, pets_root, deep_clip, tmp_path)


@pytest.mark.cuda
@pytest.mark.parametrize("name", TRAINERS)
def test_checkpoint_and_eval_only_on_cuda(name, pets_root, deep_clip, tmp_path):
    check_checkpoint_and_eval_only(name, "fp16", True, pets_root, deep_clip, tmp_path)


@pytest.mark.cuda
@pytest.mark.parametrize("trainer", ["CoOp", "CoCoOp"])
def test_torchrun_one_process_with_nccl(trainer, pets_root, tiny_clip_path, tmp_path):
    proc = torchrun(1, trainer, pets_root, tiny_clip_path, tmp_path, use_cuda=True, prec="fp16", env=NCCL_LOG)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "NCCL INFO" in output, "the process group did not use nccl"
    state = learned(tmp_path)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in state.values())


NCCL_LOG = {"NCCL_DEBUG": "INFO"}  # NCCL prints its "NCCL INFO" lines only when nccl is in use


# ---- the same checks on the CPU ---------------------------------------------------------------------


# Each half-precision path once (the CUDA tests take every trainer): CoCoOp's per-image prompts in fp16,
# CoOp under amp's loss scaling, bf16 autocast, and zero-shot's fp16 class features.
CPU_TWINS = [("CoCoOp", "fp16"), ("CoOp", "amp"), ("CoCoOp", "bf16"), ("ZeroshotCLIP2", "fp16")]


@pytest.mark.parametrize("name,prec", CPU_TWINS)
def test_training_steps_under_each_precision_on_cpu(name, prec, pets_root, small_clip, tmp_path, monkeypatch):
    with forced_precision(monkeypatch):
        check_precision(name, prec, CPU, pets_root, small_clip, tmp_path)


# CLIP-LoRA counts its training in iterations of its own (its card's short_run bounds the run); Tip-Adapter-F
# keeps its best epoch's keys as hook state in the checkpoint.
@pytest.mark.parametrize(
    "name,prec", [("CoOp", "bf16"), ("ZeroshotCLIP", "fp32"), ("CLIP_LoRA", "fp32"), ("Tip_Adapter_F", "fp32")]
)
def test_checkpoint_and_eval_only_on_cpu(name, prec, pets_root, small_clip, tmp_path):
    check_checkpoint_and_eval_only(name, prec, False, pets_root, small_clip, tmp_path)


def test_forced_precision_reaches_the_half_precision_path(pets_root, small_clip, tmp_path, monkeypatch):
    """The CPU twins are worth something only if fp16 really runs: CLIP in half, learned values in fp32."""
    from tests.precision_matrix import build, learned_parameters

    with forced_precision(monkeypatch):
        trainer = build("CoOp", "fp16", CPU, pets_root, small_clip, tmp_path)
    assert trainer.prec == "fp16"
    assert trainer.model.image_encoder.conv1.weight.dtype == torch.float16
    assert all(p.dtype == torch.float32 for p in learned_parameters(trainer).values())
