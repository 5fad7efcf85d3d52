"""MaPLe, IVLP, VPT and PromptSRC end to end: the authors' yamls, folders and keys; their checkpoints; GPA resume."""

import os
import shutil

import pytest
import torch

import dasslite.engine.build
from coop_toolkit.trainers.clip_backbone import load_clip
from coop_toolkit.trainers.promptsrc import GaussianPromptAggregation, gpa_weights
from tests import test_train_cli
from tools.tiny_clip import save_tiny_clip

run = test_train_cli.run
data_root = test_train_cli.data_root  # the toy OxfordPets fixture of the command-line tests

CFG = {
    "MaPLe": ("configs/trainers/MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml", "MultiModalPromptLearner", "MAPLE"),
    "IVLP": ("configs/trainers/IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml", "VLPromptLearner", "IVLP"),
    "VPT": ("configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml", "prompt_learner", "VPT"),
    "PromptSRC": ("configs/trainers/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml", "VLPromptLearner", "PROMPTSRC"),
}
DEPTH = {"MaPLe": ("PROMPT_DEPTH",), "VPT": ("PROMPT_DEPTH_VISION",)}
# A learned key of each method under the authors' name, and one frozen CLIP key.
LEARNED = {
    "MaPLe": "prompt_learner.compound_prompt_projections.1.weight",
    "IVLP": "text_encoder.transformer.resblocks.2.VPT_shallow",
    "VPT": "image_encoder.transformer.resblocks.2.VPT_shallow",
    "PromptSRC": "image_encoder.VPT",
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    paths = {}
    for shape in ("ViT-B/32", "ViT-L/14"):
        paths[shape] = str(root / f"{shape.replace('/', '')}.pt")
        save_tiny_clip(paths[shape], shape=shape, layers=3, fmt="state_dict")
    return paths


def method_opts(method, depth=3, epochs=1):
    node = CFG[method][2]
    keys = DEPTH.get(method, ("PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT"))
    opts = ["DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", str(epochs), f"TRAINER.{node}.PREC", "fp32"]
    for key in keys:
        opts += [f"TRAINER.{node}.{key}", str(depth)]
    return tuple(opts)


def capture_trainer(monkeypatch):
    """The trainers train.main builds, each with a copy of its learned parameters as built."""
    built = []
    original = dasslite.engine.build.build_trainer

    def build(cfg):
        trainer = original(cfg)
        trainer.initial = {n: p.detach().clone() for n, p in trainer.model.learned_parameters().items()}
        built.append(trainer)
        return trainer

    monkeypatch.setattr(dasslite.engine.build, "build_trainer", build)  # train.py imports it when it builds
    return built


@pytest.mark.parametrize(
    "method,shape,reload", [("MaPLe", "ViT-L/14", True), ("IVLP", "ViT-B/32", False), ("VPT", "ViT-B/32", True)]
)
def test_training_saves_the_authors_layout_and_moves_only_the_prompts(
    method,
    shape,
    reload,
    clips,
    data_root,
    tmp_path,
    monkeypatch,
):
    cfg_file, folder, _ = CFG[method]
    built = capture_trainer(monkeypatch)
    trained = run(data_root, tmp_path / "run", clips[shape], method, cfg_file, opts=method_opts(method))
    ckpt = torch.load(tmp_path / "run" / folder / "model.pth.tar-1", weights_only=True)
    sd = ckpt["state_dict"]
    frozen = load_clip(clips[shape]).state_dict()
    assert torch.equal(sd["image_encoder.ln_post.weight"], frozen["visual.ln_post.weight"])
    assert torch.equal(
        sd["text_encoder.transformer.resblocks.2.mlp.c_fc.weight"], frozen["transformer.resblocks.2.mlp.c_fc.weight"]
    )
    model = built[0].model
    learned = model.learned_parameters()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(learned)
    for name, p in learned.items():  # SGD skips a parameter without gradient: every prompt got one
        assert not torch.equal(p.detach(), built[0].initial[name]), name
    assert LEARNED[method] in sd and not any("vision_prompts" in k or "text_prompts" in k for k in sd)
    if not reload:
        return

    evaluated = run(
        data_root,
        tmp_path / "eval",
        clips[shape],
        method,
        cfg_file,
        extra=("--eval-only", "--model-dir", str(tmp_path / "run"), "--load-epoch", "1"),
        opts=method_opts(method),
    )
    assert evaluated["metrics"] == trained["metrics"]


def authors_checkpoint(clip_path, n_ctx=4, depth=3, n_cls_saved=3):
    """A PromptSRC checkpoint as the authors' code writes it: their key names, frozen CLIP included,
    a frozen copy of the image tower under prompt_learner.ZS_image_encoder, class buffers of another
    class list, and a frozen weight that differs from the loaded CLIP (their GPA touches those too)."""
    g = torch.Generator().manual_seed(0)
    clip = load_clip(clip_path).state_dict()
    v_width, t_width = clip["visual.conv1.weight"].shape[0], clip["ln_final.weight"].shape[0]
    sd = {"logit_scale": clip["logit_scale"], "prompt_learner.ctx": torch.randn(n_ctx, t_width, generator=g)}
    sd["prompt_learner.token_prefix"] = torch.zeros(n_cls_saved, 1, t_width)
    sd["prompt_learner.token_suffix"] = torch.zeros(n_cls_saved, 77 - 1 - n_ctx, t_width)
    for key, value in clip.items():
        if key.startswith("visual."):
            sd["prompt_learner.ZS_image_encoder." + key[7:]] = value.clone()
            sd["image_encoder." + key[7:]] = value.clone()
        elif key.startswith(("transformer.", "ln_final.", "positional_embedding", "text_projection")):
            sd["text_encoder." + key] = value.clone()
    sd["image_encoder.ln_post.weight"] = sd["image_encoder.ln_post.weight"] * 1.5
    sd["image_encoder.VPT"] = torch.randn(n_ctx, v_width, generator=g)
    for k in range(1, depth):
        sd[f"image_encoder.transformer.resblocks.{k}.VPT_shallow"] = torch.randn(n_ctx, v_width, generator=g)
        sd[f"text_encoder.transformer.resblocks.{k}.VPT_shallow"] = torch.randn(n_ctx, t_width, generator=g)
    return sd


def test_a_checkpoint_of_the_authors_code_loads_and_evaluates(clips, data_root, tmp_path, monkeypatch):
    sd = authors_checkpoint(clips["ViT-B/32"])
    folder = tmp_path / "theirs" / "VLPromptLearner"
    os.makedirs(folder)
    state = {"state_dict": sd, "epoch": 20, "optimizer": None, "scheduler": None, "val_result": None}
    torch.save(state, folder / "model.pth.tar-20")
    built = capture_trainer(monkeypatch)
    cfg_file = CFG["PromptSRC"][0]
    extra = ("--eval-only", "--model-dir", str(tmp_path / "theirs"), "--load-epoch", "20")
    run(
        data_root,
        tmp_path / "eval",
        clips["ViT-B/32"],
        "PromptSRC",
        cfg_file,
        extra=extra,
        opts=method_opts("PromptSRC"),
    )
    model = built[0].model
    ours = model.state_dict()
    for key in ("prompt_learner.ctx", "image_encoder.VPT", "image_encoder.ln_post.weight"):
        assert torch.equal(ours[key], sd[key]), key
    for k in (1, 2):
        assert torch.equal(
            model.vision_prompts.deep[k - 1].detach(), sd[f"image_encoder.transformer.resblocks.{k}.VPT_shallow"]
        )
        assert torch.equal(
            model.text_prompts.deep[k - 1].detach(), sd[f"text_encoder.transformer.resblocks.{k}.VPT_shallow"]
        )
    assert ours["prompt_learner.token_prefix"].shape[0] == 5  # rebuilt for the current classes, not loaded


def test_gpa_is_the_gaussian_weighted_sum_of_the_epochs():
    param = torch.nn.Parameter(torch.zeros(2))
    weights = gpa_weights(2, 1, 3)
    hook = GaussianPromptAggregation(weights, {"p": param})
    hook.trainer = type("T", (), {})()
    values = [1.0, 2.0, 4.0]
    for epoch, value in enumerate(values):
        hook.trainer.epoch = epoch
        param.data.fill_(value)
        hook.after_epoch()
    expected = sum(w * v for w, v in zip(weights, values))
    torch.testing.assert_close(param.data, torch.full((2,), expected))
    assert abs(sum(weights) - 1) < 1e-12 and weights[1] > weights[0] == pytest.approx(weights[2])


def test_promptsrc_resumed_after_a_kill_equals_the_uninterrupted_run(clips, data_root, tmp_path):
    cfg_file, folder, _ = CFG["PromptSRC"]
    opts = method_opts("PromptSRC", epochs=2) + ("TRAIN.CHECKPOINT_FREQ", "1", "TRAINER.PROMPTSRC.GPA_MEAN", "2")
    full = run(data_root, tmp_path / "full", clips["ViT-B/32"], "PromptSRC", cfg_file, opts=opts)
    part = tmp_path / "part" / folder  # killed after epoch 1: its GPA sum holds epoch 1
    os.makedirs(part)
    shutil.copy(tmp_path / "full" / folder / "model.pth.tar-1", part)
    (part / "checkpoint").write_text("model.pth.tar-1\n")
    resumed = run(data_root, tmp_path / "part", clips["ViT-B/32"], "PromptSRC", cfg_file, opts=opts)
    a = torch.load(tmp_path / "full" / folder / "model.pth.tar-2", weights_only=True)
    b = torch.load(tmp_path / "part" / folder / "model.pth.tar-2", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert resumed["metrics"] == full["metrics"]
    epoch1 = torch.load(tmp_path / "full" / folder / "model.pth.tar-1", weights_only=True)
    sums = epoch1["hooks"]["GaussianPromptAggregation"]["sums"]
    assert set(sums) >= {"prompt_learner.ctx", "vision_prompts.first"}
    weights = gpa_weights(2, 1, 2)
    torch.testing.assert_close(sums["prompt_learner.ctx"], weights[0] * epoch1["state_dict"]["prompt_learner.ctx"])
