import math

import pytest
import torch

from dasslite.config import get_cfg_default
from dasslite.engine.checkpoint import load_checkpoint, save_checkpoint
from dasslite.optim.lr_scheduler import ConstantWarmupScheduler, LinearWarmupScheduler, build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer


def coop_optim(max_epoch, **kw):
    cfg = get_cfg_default().OPTIM
    cfg.NAME, cfg.LR, cfg.MAX_EPOCH = "sgd", 0.002, max_epoch
    cfg.LR_SCHEDULER, cfg.WARMUP_EPOCH, cfg.WARMUP_TYPE, cfg.WARMUP_CONS_LR = "cosine", 1, "constant", 1e-5
    for k, v in kw.items():
        cfg[k] = v
    return cfg


def run_epochs(optim, sched, n):
    """LR of each epoch, stepping the optimizer then the scheduler once per epoch."""
    lrs = []
    for _ in range(n):
        lrs.append(optim.param_groups[0]["lr"])
        optim.step()
        sched.step()
    return lrs


def build(cfg, n_params=1):
    param = torch.nn.Parameter(torch.zeros(n_params))
    param.grad = torch.ones(n_params)
    optim = build_optimizer([param], cfg)
    return optim, build_lr_scheduler(optim, cfg)


@pytest.mark.parametrize(
    "max_epoch, printed",
    [
        (10, ["1.0000e-05", "2.0000e-03", "1.9511e-03", "1.8090e-03", "4.1221e-04", "1.9098e-04"]),
        (50, ["1.0000e-05", "2.0000e-03", "1.9980e-03", "1.9921e-03", "1.7713e-05", "7.8853e-06"]),
        (200, ["1.0000e-05", "2.0000e-03", "1.9999e-03", "1.9995e-03", "1.1101e-06", "4.9344e-07"]),
    ],
)
def test_coop_schedule_matches_the_reference(max_epoch, printed):
    optim, sched = build(coop_optim(max_epoch))
    assert isinstance(sched, ConstantWarmupScheduler)
    lrs = run_epochs(optim, sched, max_epoch)
    for k, lr in enumerate(lrs, start=1):
        expected = 1e-5 if k == 1 else 0.001 * (1 + math.cos(math.pi * (k - 2) / max_epoch))
        assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15), k
    shown = [lrs[i] for i in (0, 1, 2, 3, max_epoch - 2, max_epoch - 1)]
    assert [f"{lr:.4e}" for lr in shown] == printed


def test_issue_26_log_values():
    lrs = run_epochs(*build(coop_optim(50)), 50)
    assert f"{lrs[2]:.6e}" == "1.998027e-03" and f"{lrs[49]:.6e}" == "7.885299e-06"


@pytest.mark.parametrize(
    "kw", [{}, {"WARMUP_TYPE": "linear", "WARMUP_EPOCH": 3}, {"LR_SCHEDULER": "multi_step", "STEPSIZE": (3, 6)}]
)
def test_state_round_trip_through_a_checkpoint_continues_identically(tmp_path, kw):
    cfg = coop_optim(10, **kw)
    optim_a, sched_a = build(cfg)
    run_epochs(optim_a, sched_a, 4)
    save_checkpoint(
        {"state_dict": {}, "epoch": 4, "optimizer": optim_a.state_dict(), "scheduler": sched_a.state_dict()},
        str(tmp_path),
    )
    ckpt = load_checkpoint(str(tmp_path / "model.pth.tar-4"))  # weights_only: plain data only
    optim_b, sched_b = build(cfg)
    optim_b.load_state_dict(ckpt["optimizer"])
    sched_b.load_state_dict(ckpt["scheduler"])
    assert run_epochs(optim_b, sched_b, 6) == run_epochs(optim_a, sched_a, 6)


def test_linear_warmup_and_step_schedules():
    lrs = run_epochs(*build(coop_optim(10, WARMUP_TYPE="linear", WARMUP_EPOCH=2, WARMUP_MIN_LR=1e-4)), 4)
    assert lrs[:3] == pytest.approx([1e-4, 0.001, 0.002])
    optim, sched = build(coop_optim(10, WARMUP_TYPE="linear", WARMUP_EPOCH=2))
    assert isinstance(sched, LinearWarmupScheduler)
    lrs = run_epochs(*build(coop_optim(6, LR_SCHEDULER="single_step", WARMUP_EPOCH=0, STEPSIZE=(2,))), 6)
    assert lrs == pytest.approx([0.002, 0.002, 0.0002, 0.0002, 0.00002, 0.00002])
    lrs = run_epochs(*build(coop_optim(4, LR_SCHEDULER="single_step", WARMUP_EPOCH=0, STEPSIZE=-1)), 4)
    assert lrs == pytest.approx([0.002] * 4)  # -1 -> MAX_EPOCH: no decay within the run
    lrs = run_epochs(*build(coop_optim(6, LR_SCHEDULER="multi_step", WARMUP_EPOCH=0, STEPSIZE=(1, 4))), 6)
    assert lrs == pytest.approx([0.002, 0.0002, 0.0002, 0.0002, 0.00002, 0.00002])


def test_sgd_gets_dassl_arguments():
    cfg = coop_optim(10)
    cfg.SGD_NESTEROV, cfg.SGD_DAMPNING = True, 0
    optim = build_optimizer(torch.nn.Linear(2, 2), cfg)
    group = optim.param_groups[0]
    assert isinstance(optim, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (0.002, 0.9, 5e-4, True)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adam", torch.optim.Adam),
        ("amsgrad", torch.optim.Adam),
        ("rmsprop", torch.optim.RMSprop),
        ("radam", torch.optim.RAdam),
        ("adamw", torch.optim.AdamW),
    ],
)
def test_other_optimizers(name, cls):
    cfg = coop_optim(10, NAME=name)
    optim = build_optimizer(torch.nn.Linear(2, 2), cfg)
    assert type(optim) is cls
    if name in ("adam", "amsgrad"):
        assert optim.param_groups[0]["amsgrad"] == (name == "amsgrad")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r'Unknown optimizer "sdg". Did you mean "sgd"\?.*adamw.*OPTIM.NAME'):
        build_optimizer(torch.nn.Linear(2, 2), coop_optim(10, NAME="sdg"))
    with pytest.raises(ValueError, match=r'"cosin".*Did you mean "cosine".*OPTIM.LR_SCHEDULER'):
        build(coop_optim(10, LR_SCHEDULER="cosin"))


def test_staged_lr():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 2))
    cfg = coop_optim(10, STAGED_LR=True, NEW_LAYERS=("head",))
    optim = build_optimizer(model, cfg)
    assert [g["lr"] for g in optim.param_groups] == pytest.approx([0.0002, 0.002])
    with pytest.raises(ValueError, match="neck"):
        build_optimizer(model, coop_optim(10, STAGED_LR=True, NEW_LAYERS=("neck",)))


@pytest.mark.parametrize("name", ["adam", "amsgrad", "radam", "adamw"])
def test_adam_eps_is_a_config_key_whose_default_is_torchs(name):
    """OPTIM.ADAM_EPS: TCP's yamls set 1e-3 (its README patches Dassl's Adam); every other run keeps 1e-8."""
    cfg = coop_optim(2, NAME=name, WEIGHT_DECAY=0.0)
    param = torch.nn.Parameter(torch.ones(3))
    assert build_optimizer([param], cfg).param_groups[0]["eps"] == 1e-8
    cfg.ADAM_EPS = 1e-3
    optim = build_optimizer([param], cfg)
    assert optim.param_groups[0]["eps"] == 1e-3
    if name == "adam":  # the first Adam step is lr * g / (|g| + eps): eps shows in the update
        param.grad = torch.full((3,), 1e-3)
        optim.step()
        torch.testing.assert_close(param.detach(), torch.full((3,), 1 - 0.002 * 1e-3 / (1e-3 + 1e-3)))
