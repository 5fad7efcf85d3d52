"""DePT (coop_toolkit/trainers/dept.py) on CoOp, CoCoOp, KgCoOp, MaPLe and PromptSRC: its loss and logits
against a direct computation, what learns and at which LR, the authors' checkpoints, their first draws,
and train.py end to end."""

import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from coop_toolkit.trainers.dept import (
    ExtrasLinearProbeCoCoOp,
    ExtrasLinearProbeCoOp,
    ExtrasLinearProbeKgCoOp,
    ExtrasLinearProbeMaPLe,
    ExtrasLinearProbePromptSRC,
)
from dasslite.engine.build import TRAINER_REGISTRY
from tests import test_train_cli
from tests.trainers import test_deep_prompt_init
from tests.trainers.helpers import CLASSNAMES, bare_trainer, batch_of, make_cfg

run = test_train_cli.run
data_root = test_train_cli.data_root

clip_path = test_deep_prompt_init.clip_path  # the tiny ViT-B/32 fixture
LAYERS = test_deep_prompt_init.LAYERS

DEPT = (
    ExtrasLinearProbeCoOp,
    ExtrasLinearProbeCoCoOp,
    ExtrasLinearProbeKgCoOp,
    ExtrasLinearProbeMaPLe,
    ExtrasLinearProbePromptSRC,
)
HEAD_KEYS = {"film_lp_img.scale", "film_lp_img.bias", "film_lp_text.scale", "film_lp_text.bias"}
LINEAR_KEYS = {"linear_probe_proj.weight", "linear_probe_proj.bias"}


DEPTHS = {"MAPLE": ("PROMPT_DEPTH",), "PROMPTSRC": ("PROMPT_DEPTH_TEXT", "PROMPT_DEPTH_VISION")}


def options(trainer_class):
    """The trainer's reference yaml's options on the tiny CLIP: fp32, depths within its layers."""
    node = trainer_class.config_node
    opts = {f"TRAINER.{node}.PREC": "fp32"}
    for key in DEPTHS.get(node, ()):
        opts[f"TRAINER.{node}.{key}"] = str(LAYERS)
    return opts


def dept_cfg(trainer_class, clip_path, subsample="base", **extra):
    cfg = make_cfg(clip_path)
    cfg.merge_from_file(trainer_class.card.reference_config)
    cfg.MODEL.BACKBONE.NAME = clip_path
    node = cfg.TRAINER[trainer_class.config_node]
    node.PREC = "fp32"
    for key in ("PROMPT_DEPTH", "PROMPT_DEPTH_TEXT", "PROMPT_DEPTH_VISION"):
        if key in node:
            node[key] = LAYERS
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    for key, value in extra.items():
        cfg.merge_from_list([key.replace("__", "."), value])
    return cfg


def built(trainer_class, clip_path, seed=1, **kw):
    torch.manual_seed(seed)
    return bare_trainer(trainer_class, dept_cfg(trainer_class, clip_path, **kw))


def randomize_heads(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("film_lp_img", "film_lp_text", "linear_probe_proj"):
            for p in model.get_submodule(name).parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.dim() == 1 else 0.0))


@pytest.mark.parametrize("trainer_class", DEPT, ids=lambda c: c.__name__)
def test_loss_and_logits_are_the_direct_computation(trainer_class, clip_path):
    trainer = built(trainer_class, clip_path)
    model, weight = trainer.model, trainer.cfg.TRAINER.LINEAR_PROBE.WEIGHT
    assert weight == 0.7 and trainer.cfg.OPTIM.LR_EXP == 6.5  # the authors' defaults
    randomize_heads(model)
    batch = batch_of(n=3)
    image, label = batch["img"], batch["label"]
    with torch.no_grad():
        output = trainer.forward_train(image)
        losses = trainer.compute_losses(output, label)
    image_f, text_f = output["image"], output["text"]
    # The base method's logits, from the unnormalised features.
    with torch.no_grad():
        base_logits = trainer_class.__mro__[2].model_inference(trainer, image)
    torch.testing.assert_close(output["logits"], base_logits, rtol=1e-5, atol=1e-5)

    # The head, written out: FiLM, then the labels' class text features and the image features, both labelled.
    def film(name, x):
        return model.get_submodule(name).scale * x + model.get_submodule(name).bias

    text_own = text_f[label] if text_f.dim() == 2 else text_f[torch.arange(3), label]
    feats = torch.cat([film("film_lp_text", text_own), film("film_lp_img", image_f)])
    lp = feats @ model.linear_probe_proj.weight.t() + model.linear_probe_proj.bias
    torch.testing.assert_close(losses["ce_lp"], weight * F.cross_entropy(lp, torch.cat([label, label])))
    torch.testing.assert_close(losses["ce"], (1 - weight) * F.cross_entropy(output["logits"], label))
    extra = {"ExtrasLinearProbeKgCoOp": {"kg"}, "ExtrasLinearProbePromptSRC": {"scl_text", "scl_image", "scl_logits"}}
    assert set(losses) == {"ce", "ce_lp"} | extra.get(trainer_class.__name__, set())

    # Evaluation on base classes fuses (1 - W) * prompt + W * head over the image features.
    head = film("film_lp_img", image_f) @ model.linear_probe_proj.weight.t() + model.linear_probe_proj.bias
    with torch.no_grad():
        fused = trainer.model_inference(image)
    torch.testing.assert_close(fused, (1 - weight) * output["logits"] + weight * head, rtol=1e-5, atol=1e-5)
    # so the features protocol says its class features give the prompt's part alone
    assert trainer.features_give_logits is False
    with torch.no_grad():
        image_n = trainer.image_features(image)
        text_n = trainer.class_features(image_n if trainer.image_conditioned else None)
        equation = "bd,bcd->bc" if trainer.image_conditioned else "bd,cd->bc"
        prompt_part = trainer.logit_scale() * torch.einsum(equation, image_n, text_n)
    torch.testing.assert_close(prompt_part, output["logits"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trainer_class", (ExtrasLinearProbeCoOp, ExtrasLinearProbeMaPLe), ids=lambda c: c.__name__)
def test_gradients_reach_only_the_declared_parameters_at_their_staged_lr(trainer_class, clip_path):
    trainer = built(trainer_class, clip_path)
    learned = trainer.learned_parameters()
    assert HEAD_KEYS | LINEAR_KEYS <= set(learned)
    trainer.batch_idx, trainer.num_batches = 0, 2
    trainer.forward_backward(batch_of())
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad == set(learned)
    base_lr = trainer.cfg.OPTIM.LR
    groups = trainer.build_optimizer(trainer.model).param_groups
    heads = {
        id(p) for n, p in learned.items() if n.split(".")[0] in ("film_lp_img", "film_lp_text", "linear_probe_proj")
    }
    assert [g["lr"] for g in groups] == [base_lr, base_lr * 6.5]
    assert {id(p) for p in groups[1]["params"]} == heads
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in learned.values()} - heads


@pytest.mark.parametrize("trainer_class", (ExtrasLinearProbeCoOp, ExtrasLinearProbeMaPLe), ids=lambda c: c.__name__)
def test_the_head_is_drawn_after_the_base_model_as_the_authors_do(trainer_class, clip_path):
    trainer = built(trainer_class, clip_path, seed=7)
    base_class = trainer_class.__mro__[2]
    cfg = dept_cfg(trainer_class, clip_path)
    torch.manual_seed(7)
    base = base_class.__new__(base_class)
    base.cfg, base.device = cfg, torch.device("cpu")
    base_model = base.build_custom_clip(CLASSNAMES, base.load_frozen_clip())
    dim = trainer.model.film_lp_img.scale.shape[0]
    replay = nn.Linear(dim, len(CLASSNAMES))  # the authors' nn.Linear(clip_dim, n_cls) after their CustomCLIP
    assert torch.equal(trainer.model.linear_probe_proj.weight, replay.weight)
    assert torch.equal(trainer.model.linear_probe_proj.bias, replay.bias)
    assert torch.equal(trainer.model.prompt_learner.ctx, base_model.prompt_learner.ctx)
    assert torch.equal(trainer.model.film_lp_img.scale, torch.ones(dim))


def authors_checkpoint(trainer, path, name, seed=11):
    """The whole model's state dict under the authors' keys (theirs saves the CustomCLIP with frozen
    CLIP), with learned tensors of their own, as torch.save of Dassl's save_checkpoint writes it."""
    g = torch.Generator().manual_seed(seed)
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for key in set(trainer.learned_parameters()) & set(state):
        state[key] = torch.randn(state[key].shape, generator=g)
    state = {k: v for k, v in state.items() if not k.endswith(("token_prefix", "token_suffix"))}
    folder = os.path.join(path, name)
    os.makedirs(folder)
    torch.save({"state_dict": state, "epoch": 10, "optimizer": None, "scheduler": None}, f"{folder}/model.pth.tar-10")
    return state


@pytest.mark.parametrize("trainer_class", (ExtrasLinearProbeKgCoOp, ExtrasLinearProbeMaPLe), ids=lambda c: c.__name__)
def test_a_checkpoint_of_the_authors_code_loads_and_evaluates(trainer_class, clip_path, tmp_path):
    folder = {"ExtrasLinearProbeKgCoOp": "PromptLearner", "ExtrasLinearProbeMaPLe": "MultiModalPromptLearner"}
    writer = built(trainer_class, clip_path, seed=2)
    state = authors_checkpoint(writer, str(tmp_path), folder[trainer_class.__name__])
    assert "linear_probe_proj.weight" in state and "film_lp_text.scale" in state

    base = built(trainer_class, clip_path, seed=5)
    assert trainer_class.model_name == folder[trainer_class.__name__]
    base.load_model(str(tmp_path), epoch=10)
    for key in HEAD_KEYS | LINEAR_KEYS | {"prompt_learner.ctx"}:
        assert torch.equal(base.model.state_dict()[key], state[key]), key
    image = batch_of()["img"]
    with torch.no_grad():
        logits = base.model_inference(image)
    assert logits.shape == (2, len(CLASSNAMES)) and torch.isfinite(logits).all()

    # New classes: no head is built, the checkpoint's is not read, the logits are the prompt's.
    new = built(trainer_class, clip_path, seed=5, subsample="new")
    assert isinstance(new.model.linear_probe_proj, nn.Identity)
    new.load_model(str(tmp_path), epoch=10)
    with torch.no_grad():
        prompt_only = new.model_inference(image)
        expected = trainer_class.__mro__[2].model_inference(new, image)
    torch.testing.assert_close(prompt_only, expected)
    assert new.features_give_logits  # no head: logit_scale * image @ class features
    assert not set(new.learned_parameters()) & (HEAD_KEYS | LINEAR_KEYS)  # training here is the base method's
    with torch.no_grad():
        output = new.forward_train(image)
    torch.testing.assert_close(new.logits_of(output), expected)


def test_the_authors_names_and_yamls_are_registered():
    names = {c.__name__ for c in DEPT}
    assert names <= set(TRAINER_REGISTRY.registered_names())
    for trainer_class in DEPT:
        assert os.path.isfile(trainer_class.card.reference_config)


@pytest.mark.parametrize("trainer_class", DEPT, ids=lambda c: c.__name__)
def test_train_py_trains_on_base_and_evaluates_on_new(trainer_class, clip_path, data_root, tmp_path):
    name, cfg_file = trainer_class.__name__, trainer_class.card.reference_config
    opts = ["DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]
    opts += [x for kv in options(trainer_class).items() for x in kv]
    folder = trainer_class.model_name
    trained = run(
        data_root, tmp_path / "base", clip_path, name, cfg_file, opts=[*opts, "DATASET.SUBSAMPLE_CLASSES", "base"]
    )
    sd = torch.load(tmp_path / "base" / folder / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert HEAD_KEYS | LINEAR_KEYS <= set(sd)
    assert trained["metrics"]["total"] > 0
    if trainer_class not in (ExtrasLinearProbeCoCoOp, ExtrasLinearProbeMaPLe):
        return  # the new-class evaluation path is the same code for every base: two bases run it
    extra = ("--eval-only", "--model-dir", str(tmp_path / "base"), "--load-epoch", "1")
    new = run(
        data_root,
        tmp_path / "new",
        clip_path,
        name,
        cfg_file,
        extra=extra,
        opts=[*opts, "DATASET.SUBSAMPLE_CLASSES", "new"],
    )
    assert new["metrics"]["total"] > 0


def test_imagenet_a_keeps_the_rows_of_its_classes_from_an_imagenet_head(clip_path, tmp_path):
    """Domain generalisation as the authors evaluate it: an ImageNet run's head (a row per ImageNet class)
    loads on ImageNet-A / -R with the rows of the target's classes, in its label order (their
    load_model's `is_reserves`, from classnames.txt and the image folders; without the dataset folder,
    by class name from the model run's run.json)."""
    wnids = [f"n0{i}" for i in range(8)]  # ImageNet's classes in its label order (classnames.txt)
    names = [f"thing {i}" for i in range(8)]
    kept = [1, 4, 6]
    source_cfg = dept_cfg(ExtrasLinearProbeCoOp, clip_path, subsample="all", DATASET__NAME="ImageNet")
    source = bare_trainer(ExtrasLinearProbeCoOp, source_cfg, classnames=names)
    state = authors_checkpoint(source, str(tmp_path / "run"), "PromptLearner")
    assert state["linear_probe_proj.weight"].shape[0] == 8

    folder = tmp_path / "imagenet-adversarial"
    for i in kept:
        (folder / "imagenet-a" / wnids[i]).mkdir(parents=True)
    (folder / "imagenet-a" / "README.txt").write_text("not a class\n")
    (folder / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in zip(wnids, names)))
    target_cfg = dept_cfg(ExtrasLinearProbeCoOp, clip_path, subsample="all", DATASET__NAME="ImageNetA")
    target = bare_trainer(ExtrasLinearProbeCoOp, target_cfg, classnames=[names[i] for i in kept])
    target.dm.dataset.text_file = str(folder / "classnames.txt")  # what the ImageNetA dataset holds
    target.dm.dataset.image_dir = str(folder / "imagenet-a")
    target.load_model(str(tmp_path / "run"), epoch=10)
    head = target.model.linear_probe_proj
    assert torch.equal(head.weight, state["linear_probe_proj.weight"][kept])
    assert torch.equal(head.bias, state["linear_probe_proj.bias"][kept])
    assert torch.equal(target.model.prompt_learner.ctx, state["prompt_learner.ctx"])
    with torch.no_grad():
        assert target.model_inference(batch_of()["img"]).shape == (2, len(kept))

    # Built from class names alone (predict.py, the API on that evaluation run): no dataset folder, so the
    # rows are matched by name to the model run's run.json.
    from coop_toolkit.run_record import make_run_record
    from dasslite.utils.io import write_json

    source_cfg.defrost()
    source_cfg.OUTPUT_DIR = str(tmp_path / "run")
    write_json(make_run_record(source_cfg, names), str(tmp_path / "run" / "run.json"))
    by_name = bare_trainer(ExtrasLinearProbeCoOp, target_cfg, classnames=[names[i] for i in kept])
    by_name.load_model(str(tmp_path / "run"), epoch=10)
    assert torch.equal(by_name.model.linear_probe_proj.weight, state["linear_probe_proj.weight"][kept])
