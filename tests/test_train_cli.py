"""The original command line end to end: train, eval-only, reference checkpoints, resume, errors.

Every run goes through `train.main` with a tiny CLIP saved in OpenAI's layout as MODEL.BACKBONE.NAME
and a miniature OxfordPets folder in its real layout, with the real trainer yamls.
"""

import json
import math
import os
import re
import shutil

import pytest
import torch
from PIL import Image

import train
from dasslite.engine.checkpoint import load_checkpoint
from tests.datasets.layouts import build_oxford_pets
from tests.trainers.helpers import COCOOP_STATE_KEYS

COCOOP_CFG = "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml"
COOP_CFG = "configs/trainers/CoOp/vit_b16_ctxv1.yaml"
PETS = "configs/datasets/oxford_pets.yaml"
COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20), (20, 230, 230)]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """OxfordPets layout whose images are a distinct colour per class (a learnable toy task)."""
    root = str(tmp_path_factory.mktemp("data"))
    layout = build_oxford_pets(root)
    image_dir = os.path.join(root, "oxford_pets", "images")
    breeds = sorted({f.rsplit("_", 1)[0] for f in os.listdir(image_dir)}, key=str.lower)
    for name in os.listdir(image_dir):
        colour = COLOURS[breeds.index(name.rsplit("_", 1)[0])]
        Image.new("RGB", (32, 32), colour).save(os.path.join(image_dir, name))
    assert [b.lower() for b in breeds] == layout.classnames
    return root


def run(data_root, out, clip, trainer="CoCoOp", cfg=COCOOP_CFG, extra=(), opts=()):
    args = [
        "--root",
        data_root,
        "--seed",
        "1",
        "--trainer",
        trainer,
        "--dataset-config-file",
        PETS,
        "--config-file",
        cfg,
        "--output-dir",
        str(out),
        *extra,
        "MODEL.BACKBONE.NAME",
        clip,
        "DATALOADER.NUM_WORKERS",
        "0",
        *opts,
    ]
    train.main(args)
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def result_block(log_path):
    text = open(log_path).read()
    return dict(re.findall(r"^\* (accuracy|error|macro_f1): ([\d.]+)%$", text, flags=re.M))


def test_cocoop_base_then_new_writes_the_reference_result_block(data_root, tiny_clip_path, tmp_path):
    base = tmp_path / "train_base"
    opts = ("DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "2")
    m = run(data_root, base, tiny_clip_path, opts=opts)
    assert os.path.isfile(base / "prompt_learner" / "model.pth.tar-2")
    assert open(base / "prompt_learner" / "checkpoint").read().strip() == "model.pth.tar-2"
    log = open(base / "log.txt").read()
    assert "Finish training" in log and "=> result" in log and "Elapsed:" in log
    assert set(result_block(base / "log.txt")) == {"accuracy", "error", "macro_f1"}
    assert m["metrics"]["total"] == 6  # 3 base classes x 2 test images

    new = tmp_path / "test_new"
    m = run(
        data_root,
        new,
        tiny_clip_path,
        extra=("--eval-only", "--model-dir", str(base), "--load-epoch", "2"),
        opts=("DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "new"),
    )
    assert m["metrics"]["total"] == 4 and m["run"]["eval_only"] and m["run"]["epoch"] == 2
    log = open(new / "log.txt").read()
    assert "Loading weights to prompt_learner from" in log and "(epoch = 2)" in log
    assert set(result_block(new / "log.txt")) == {"accuracy", "error", "macro_f1"}


@pytest.mark.parametrize("trainer,cfg", [("CoOp", COOP_CFG), ("CoCoOp", COCOOP_CFG)])
def test_saved_model_evaluates_to_the_same_accuracy(data_root, tiny_clip_path, tmp_path, trainer, cfg):
    opts = ("DATASET.NUM_SHOTS", "4", "OPTIM.MAX_EPOCH", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "4")
    trained = run(data_root, tmp_path / "a", tiny_clip_path, trainer, cfg, opts=opts)
    again = run(
        data_root,
        tmp_path / "b",
        tiny_clip_path,
        trainer,
        cfg,
        extra=("--eval-only", "--model-dir", str(tmp_path / "a"), "--load-epoch", "2"),
        opts=opts,
    )
    assert again["metrics"] == trained["metrics"]


def test_short_run_lowers_the_loss_on_a_learnable_task(data_root, tiny_clip_path, tmp_path):
    run(
        data_root,
        tmp_path,
        tiny_clip_path,
        "CoOp",
        COOP_CFG,
        opts=(
            "DATASET.NUM_SHOTS",
            "5",
            "TRAINER.COOP.CSC",
            "True",
            "TRAINER.COOP.CTX_INIT",
            "",
            "TRAINER.COOP.N_CTX",
            "4",
            "OPTIM.MAX_EPOCH",
            "8",
            "OPTIM.LR",
            "0.5",
            "OPTIM.WARMUP_EPOCH",
            "-1",
            "DATALOADER.TRAIN_X.BATCH_SIZE",
            "5",
            "INPUT.TRANSFORMS",
            "['normalize']",
        ),
    )
    losses = [
        float(x)
        for x in re.findall(
            r"^\[[\d-]+ [\d:]+\] epoch \[\d+/8\] summary: loss ([\d.]+)", open(tmp_path / "log.txt").read(), flags=re.M
        )
    ]
    assert len(losses) == 8
    assert losses[-1] < 0.5 * losses[0]


def reference_checkpoint(path, n_cls, width=64, n_ctx=4, vis_dim=32):
    """A CoCoOp checkpoint as the original writes it (docs/reference-behaviour.md, "Checkpoint files"): fp16
    tensors, buffers for another class list, the optimizer's state dict, and a warm-up scheduler state holding
    the CosineAnnealingLR object."""
    torch.manual_seed(5)
    sd = {
        "ctx": torch.randn(n_ctx, width).half(),
        "token_prefix": torch.randn(n_cls, 1, width).half(),
        "token_suffix": torch.randn(n_cls, 77 - 1 - n_ctx, width).half(),
        "meta_net.linear1.weight": torch.randn(vis_dim // 16, vis_dim).half(),
        "meta_net.linear1.bias": torch.randn(vis_dim // 16).half(),
        "meta_net.linear2.weight": torch.randn(width, vis_dim // 16).half(),
        "meta_net.linear2.bias": torch.randn(width).half(),
    }
    params = [torch.nn.Parameter(v.clone()) for k, v in sd.items() if not k.startswith("token_")]
    optim = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=5e-4)
    sum(p.float().sum() for p in params).backward()
    optim.step()
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=10.0)
    scheduler = {
        "successor": cosine,
        "warmup_epoch": 1,
        "cons_lr": 1e-5,
        "last_epoch": 10,
        "base_lrs": [0.002],
        "_step_count": 11,
        "verbose": False,
        "_get_lr_called_within_step": False,
        "_last_lr": [1.9e-4],
    }
    folder = os.path.join(path, "prompt_learner")
    os.makedirs(folder)
    torch.save(
        {"state_dict": sd, "epoch": 10, "optimizer": optim.state_dict(), "scheduler": scheduler, "val_result": None},
        os.path.join(folder, "model.pth.tar-10"),
    )
    with open(os.path.join(folder, "checkpoint"), "w") as f:
        f.write("model.pth.tar-10\n")
    return sd


def test_checkpoint_in_the_original_format_loads_and_evaluates(data_root, tiny_clip_path, tmp_path):
    reference_checkpoint(tmp_path / "ref", n_cls=100)  # trained on another class list
    assert load_checkpoint(str(tmp_path / "ref" / "prompt_learner" / "model.pth.tar-10"))["epoch"] == 10
    m = run(
        data_root,
        tmp_path / "eval",
        tiny_clip_path,
        extra=("--eval-only", "--model-dir", str(tmp_path / "ref"), "--load-epoch", "10"),
        opts=("DATASET.SUBSAMPLE_CLASSES", "new"),
    )
    assert m["metrics"]["total"] == 4 and m["run"]["epoch"] == 10
    assert "=> result" in open(tmp_path / "eval" / "log.txt").read()


def test_our_checkpoint_has_the_original_keys(data_root, tiny_clip_path, tmp_path):
    run(data_root, tmp_path, tiny_clip_path, opts=("DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1"))
    ckpt = torch.load(tmp_path / "prompt_learner" / "model.pth.tar-1", weights_only=True)
    assert {"state_dict", "epoch", "optimizer", "scheduler", "val_result"} <= set(ckpt)
    assert ckpt["epoch"] == 1 and ckpt["val_result"] is None
    assert set(ckpt["state_dict"]) == COCOOP_STATE_KEYS
    assert ckpt["state_dict"]["ctx"].dtype == torch.float32


def test_resume_continues_from_the_saved_epoch(data_root, tiny_clip_path, tmp_path):
    opts = ("DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "3", "TRAIN.CHECKPOINT_FREQ", "1")
    full = run(data_root, tmp_path / "full", tiny_clip_path, opts=opts)
    # A run that stopped after epoch 1: only its first checkpoint exists.
    part = tmp_path / "part" / "prompt_learner"
    os.makedirs(part)
    shutil.copy(tmp_path / "full" / "prompt_learner" / "model.pth.tar-1", part)
    (part / "checkpoint").write_text("model.pth.tar-1\n")
    resumed = run(data_root, tmp_path / "part", tiny_clip_path, opts=opts)
    log = open(tmp_path / "part" / "log.txt").read()
    assert "epoch [1/3]" not in log and "epoch [2/3]" in log
    a = torch.load(tmp_path / "full" / "prompt_learner" / "model.pth.tar-3", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "part" / "prompt_learner" / "model.pth.tar-3", weights_only=True)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["metrics"] == full["metrics"]


def test_zero_shot_clip_evaluates(data_root, tiny_clip_path, tmp_path):
    m = run(
        data_root,
        tmp_path,
        tiny_clip_path,
        "ZeroshotCLIP",
        "configs/trainers/CoOp/vit_b16.yaml",
        extra=("--eval-only",),
    )
    assert m["metrics"]["total"] == 10 and not math.isnan(m["metrics"]["accuracy"])
    assert "a photo of a abyssinian, a type of pet." in open(tmp_path / "log.txt").read()


@pytest.mark.parametrize(
    "flags,opts,needle",
    [
        (("--trainer", "CoCop"), (), 'Did you mean "CoCoOp"'),
        ((), ("DATASET.NAME", "OxfordPet"), 'Did you mean "OxfordPets"'),
        ((), ("TRAINER.COCOOP.N_CTXX", "4"), "TRAINER.COCOOP.N_CTX"),
    ],
)
def test_unknown_names_give_named_errors(data_root, tiny_clip_path, tmp_path, flags, opts, needle):
    args = [
        "--root",
        data_root,
        "--trainer",
        "CoCoOp",
        "--dataset-config-file",
        PETS,
        "--config-file",
        COCOOP_CFG,
        "--output-dir",
        str(tmp_path / "o"),
        *flags,
        "MODEL.BACKBONE.NAME",
        tiny_clip_path,
        *opts,
    ]
    with pytest.raises(Exception) as err:
        train.main(args)
    assert needle in str(err.value)


def test_seed_zero_is_a_seed_and_an_omitted_seed_keeps_the_yaml_value(tmp_path):
    yaml = tmp_path / "seeded.yaml"
    yaml.write_text("SEED: 7\n")
    base = ["--trainer", "CoOp", "--config-file", str(yaml)]
    assert train.setup_cfg(train.parse_args(base + ["--seed", "0"])).SEED == 0
    assert train.setup_cfg(train.parse_args(base)).SEED == 7


def _flag_help():
    return {a.option_strings[-1]: a.help for a in train.build_parser()._actions if a.option_strings}


def test_help_describes_this_tool(capsys):
    helps = _flag_help()
    backbone = helps["--backbone"]
    assert "CNN" not in backbone and "MODEL.BACKBONE.NAME" in backbone
    assert all(form in backbone for form in ("OpenAI name", "open_clip", "file"))
    assert all(name in helps["--trainer"] for name in ("CoOp", "CoCoOp", "ZeroshotCLIP"))
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    assert "name of CNN backbone" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "flag, key, value",
    [
        ("--source-domains", "DATASET.SOURCE_DOMAINS", ("a",)),
        ("--target-domains", "DATASET.TARGET_DOMAINS", ("b",)),
        ("--head", "MODEL.HEAD.NAME", "mlp"),
    ],
)
def test_compatibility_flags_say_they_are_unused_and_no_trainer_reads_their_key(flag, key, value):
    helps = _flag_help()
    assert helps[flag].startswith("unused") and key in helps[flag]
    assert sum(h.startswith("unused") for h in helps.values()) == 3  # every other flag does something
    args = train.parse_args([flag, *([value] if isinstance(value, str) else value)])
    node = train.setup_cfg(args)
    for part in key.split("."):
        node = node[part]
    assert (tuple(node) if isinstance(value, tuple) else node) == value  # the help's "it sets <key>" holds
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "coop_toolkit")
    leaf = key.split(".", 1)[1]
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    assert leaf not in f.read(), f"{name} reads {key}: its flag is no longer unused"
