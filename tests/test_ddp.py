"""Multi-process training (torchrun, gloo on CPU): world size 2 learns what world size 1 learns.

TRAIN_X.BATCH_SIZE is the global batch. One process takes it whole; two processes take half each and
DDP averages their gradients, so with the same global batches the learned parameters must agree (up
to float rounding) and so must the test accuracy. Both runs go through torchrun, so both shard the
data with a DistributedSampler (1 replica yields the global batches that 2 replicas interleave);
a plain `python train.py` run draws another order (RandomSampler), so it is not compared here.
"""

import json
import os
import subprocess

import pytest
import torch

from .datasets.layouts import build_oxford_pets
from .helpers import torchrun_argv

REPO = os.path.join(os.path.dirname(__file__), "..")
CONFIGS = {
    "CoOp": ("configs/trainers/CoOp/vit_b16_ctxv1.yaml", "TRAINER.COOP.PREC"),
    "CoCoOp": ("configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml", "TRAINER.COCOOP.PREC"),
    "ExtrasLinearProbeCoOp": ("configs/trainers/ExtrasLinearProbeCoOp/vit_b16_ep10_bs4_lr35.yaml", "TRAINER.COOP.PREC"),
}


@pytest.fixture(scope="module")
def pets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_oxford_pets(str(root))
    return str(root)


def torchrun(nproc, trainer, root, clip_path, out, batch_size=4, use_cuda=False, prec="fp32", env=None, opts=()):
    """train.py under torchrun (gloo on the CPU; nccl with use_cuda on a GPU machine)."""
    config, prec_key = CONFIGS[trainer]
    cmd = [
        *torchrun_argv(nproc),
        "train.py",
        "--root",
        root,
        "--seed",
        "1",
        "--trainer",
        trainer,
        "--output-dir",
        str(out),
        "--dataset-config-file",
        "configs/datasets/oxford_pets.yaml",
        "--config-file",
        config,
        "MODEL.BACKBONE.NAME",
        clip_path,
        prec_key,
        prec,
        "USE_CUDA",
        str(use_cuda),
        "DATASET.NUM_SHOTS",
        "4",
        "DATALOADER.NUM_WORKERS",
        "0",
        "INPUT.TRANSFORMS",
        '["normalize"]',
        "DATALOADER.TRAIN_X.BATCH_SIZE",
        str(batch_size),
        "DATALOADER.TEST.BATCH_SIZE",
        "16",
        "OPTIM.MAX_EPOCH",
        "2",
        "OPTIM.WARMUP_EPOCH",
        "0",
        "OPTIM.LR",
        "0.002",
        *opts,
    ]
    # OMP_NUM_THREADS=1 keeps 2 processes on 2 cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.path.abspath(REPO), **(env or {})}
    env.pop("MASTER_PORT", None)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def learned(out, folder="prompt_learner"):
    state = torch.load(os.path.join(out, folder, "model.pth.tar-2"), weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if not k.startswith("token_")}


def accuracy(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)["metrics"]["accuracy"]


@pytest.mark.parametrize("trainer", ["CoOp", "CoCoOp"])
def test_two_processes_learn_what_one_learns(tmp_path, pets_root, tiny_clip_path, trainer):
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"ws{nproc}"
        proc = torchrun(nproc, trainer, pets_root, tiny_clip_path, out)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs[nproc] = out
        log = (out / "log.txt").read_text()
        assert log.count("epoch [2/2] summary") == 1  # rank 0 alone writes the log
        assert log.count(f"Distributed: world size {nproc}, backend gloo") == 1
        assert (out / "run.json").is_file() and list((out / "tensorboard").glob("events.out.tfevents.*"))
    one, two = learned(runs[1]), learned(runs[2])
    assert sorted(one) == sorted(two) and "ctx" in one
    if trainer == "CoCoOp":
        assert any(k.startswith("meta_net.") for k in one)
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6, msg=f"{trainer} {key}")
    assert accuracy(runs[2]) == accuracy(runs[1])


def test_dept_under_two_processes_learns_what_one_learns(tmp_path, pets_root, tiny_clip_path):
    """DePT's step reads the towers' raw features through DDP and uses its head after them: the context,
    the FiLMs and the linear head (at its own LR) still learn on two processes what they learn on one."""
    runs = {nproc: tmp_path / f"ws{nproc}" for nproc in (1, 2)}
    for nproc, out in runs.items():
        base = ("DATASET.SUBSAMPLE_CLASSES", "base")  # where DePT's head exists
        proc = torchrun(nproc, "ExtrasLinearProbeCoOp", pets_root, tiny_clip_path, out, opts=base)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"Distributed: world size {nproc}, backend gloo" in (out / "log.txt").read_text()
    one, two = learned(runs[1], "PromptLearner"), learned(runs[2], "PromptLearner")
    keys = ["prompt_learner.ctx", "linear_probe_proj.weight", "linear_probe_proj.bias"]
    keys += [f"film_lp_{side}.{p}" for side in ("img", "text") for p in ("scale", "bias")]
    assert not torch.equal(one["film_lp_img.scale"], torch.ones_like(one["film_lp_img.scale"]))  # it learned
    for key in keys:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6, msg=key)
    assert accuracy(runs[2]) == accuracy(runs[1])


def test_a_batch_that_cannot_be_split_is_refused(tmp_path, pets_root, monkeypatch):
    """CoCoOp's configs train at batch 1, which 2 processes cannot share: the error says what to change."""
    import torch.distributed as dist

    from dasslite.config import get_cfg_default
    from dasslite.data import data_manager
    from dasslite.data.datum import Datum

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        monkeypatch.setattr(data_manager, "get_world_size", lambda: 2)
        cfg = get_cfg_default()
        items = [Datum(impath=os.path.join(pets_root, "x.jpg"), label=0, classname="x")] * 4
        with pytest.raises(ValueError, match=r"DATALOADER.TRAIN_X.BATCH_SIZE is the global batch .*\(a batch of 1"):
            data_manager.build_data_loader(cfg, "RandomSampler", items, batch_size=1, split="train_x")
    finally:
        dist.destroy_process_group()
