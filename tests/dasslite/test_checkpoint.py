import os

import pytest
import torch
from torch.optim.lr_scheduler import LRScheduler

from dasslite.engine.checkpoint import (
    UnsafeCheckpointError,
    load_checkpoint,
    load_weights,
    model_file_path,
    read_pointer,
    save_checkpoint,
)
from dasslite.optim.lr_scheduler import ConstantWarmupScheduler, build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer

from .test_optim import coop_optim, run_epochs


class DasslConstantWarmup(ConstantWarmupScheduler):
    """Stand-in for Dassl's wrapper: the base state_dict, i.e. __dict__ minus the optimizer, so the
    CosineAnnealingLR object itself (with its optimizer) is pickled under "successor"."""

    state_dict = LRScheduler.state_dict


def reference_file(path, epochs=3):
    ctx = torch.nn.Parameter(torch.randn(4, 8))
    optim = torch.optim.SGD([ctx], lr=0.002, momentum=0.9, weight_decay=5e-4)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=10.0)
    sched = DasslConstantWarmup(optim, cosine, 1, 1e-5)
    for _ in range(epochs):
        ctx.grad = torch.ones_like(ctx)  # a momentum buffer: the pickled optimizer state is non-empty
        optim.step()
        sched.step()
    state = sched.state_dict()
    assert isinstance(state["successor"], torch.optim.lr_scheduler.CosineAnnealingLR)  # like the reference
    torch.save(
        {
            "state_dict": {"ctx": ctx.detach()},
            "epoch": epochs,
            "optimizer": optim.state_dict(),
            "scheduler": state,
            "val_result": None,
        },
        path,
    )
    return optim, sched


def test_reference_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / "model.pth.tar-3")
    ref_optim, ref_sched = reference_file(path)
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["val_result"] is None and ckpt["state_dict"]["ctx"].shape == (4, 8)

    param = torch.nn.Parameter(torch.zeros(4, 8))
    optim = build_optimizer([param], coop_optim(10))
    sched = build_lr_scheduler(optim, coop_optim(10))
    optim.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    assert sched.successor.last_epoch == ref_sched.successor.last_epoch == 2
    assert "optimizer" not in sched.state_dict()["successor"]
    param.grad = torch.ones_like(param)
    assert run_epochs(optim, sched, 7) == pytest.approx(run_epochs(ref_optim, ref_sched, 7), rel=1e-12)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Arbitrary:
    pass


@pytest.mark.parametrize("obj, name", [(Evil(), "system"), (Arbitrary(), "Arbitrary")])
def test_arbitrary_globals_are_refused_by_name(tmp_path, obj, name):
    path = str(tmp_path / "bad.pth")
    torch.save({"state_dict": {}, "x": obj}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    assert path in str(err.value) and name in str(err.value)


def test_save_writes_reference_layout_atomically(tmp_path):
    state = {
        "state_dict": {"module.w": torch.ones(2)},
        "epoch": 5,
        "optimizer": None,
        "scheduler": None,
        "val_result": None,
    }
    path = save_checkpoint(state, str(tmp_path / "prompt_learner"))
    assert path.endswith("prompt_learner/model.pth.tar-5")
    assert (tmp_path / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-5\n"
    assert list(load_checkpoint(path)["state_dict"]) == ["w"]  # DataParallel prefix stripped
    save_checkpoint(dict(state, val_result=70.0), str(tmp_path / "prompt_learner"), is_best=True)
    assert read_pointer(str(tmp_path / "prompt_learner")).endswith("model.pth.tar-5")  # best does not move it
    assert load_checkpoint(str(tmp_path / "prompt_learner" / "model-best.pth.tar"))["val_result"] == 70.0
    assert sorted(os.listdir(tmp_path / "prompt_learner")) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-5"]


def test_missing_model_file_lists_what_exists(tmp_path):
    save_checkpoint({"state_dict": {}, "epoch": 2}, str(tmp_path / "m"))
    with pytest.raises(FileNotFoundError) as err:
        model_file_path(str(tmp_path), "m", epoch=7)
    assert "model.pth.tar-7" in str(err.value) and "model.pth.tar-2" in str(err.value)
    with pytest.raises(FileNotFoundError, match="--load-epoch"):
        model_file_path(str(tmp_path), "m")
    with pytest.raises(FileNotFoundError, match="no checkpoint files"):
        model_file_path(str(tmp_path), "other", epoch=1)


def test_load_weights_reports_mismatches():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"weight: checkpoint \(5, 3\), model \(2, 3\)"):
        load_weights(model, {"weight": torch.zeros(5, 3), "bias": torch.zeros(2)}, "f.pth")
    with pytest.raises(ValueError, match='saved by trainer "CoCoOp".*another trainer'):
        load_weights(model, {"meta_net.w": torch.zeros(1)}, "f.pth", trainer_name="CoCoOp")
    load_weights(
        model, {"weight": torch.ones(2, 3), "token_prefix": torch.zeros(1)}, "f.pth", ignore_keys=("token_prefix",)
    )
    assert torch.equal(model.weight, torch.ones(2, 3))
    with pytest.raises(KeyError, match="missing keys"):
        load_weights(model, {"weight": torch.ones(2, 3)}, "f.pth", strict=True)


@pytest.mark.parametrize("text", ["", "\n", "  \n"])
def test_an_empty_pointer_beside_checkpoints_is_refused_not_taken_for_no_checkpoint(tmp_path, text):
    """Resuming "from scratch" past an empty pointer would overwrite model.pth.tar-1; alone it means none."""
    from dasslite.errors import CheckpointError

    (tmp_path / "checkpoint").write_text(text)
    assert read_pointer(str(tmp_path)) is None
    (tmp_path / "model.pth.tar-1").write_bytes(b"x")
    with pytest.raises(
        CheckpointError, match=r'pointer ".*checkpoint" is empty, but its folder holds model\.pth\.tar-1'
    ):
        read_pointer(str(tmp_path))
