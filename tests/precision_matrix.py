"""Every trainer under every PREC: the checks the CUDA tests run, written so that they also run on CPU.

The trainers come from TRAINER_REGISTRY (every registered class but the ones tests define, so the
installed plugins' too), so a new method is covered as soon as it registers; its config is the one its
card declares (`card = MethodCard(reference_config=...)`, coop_toolkit/method_card.py). Runs go through
train.py's own config path (`train.setup_cfg`, `train.main`) with a tiny 64-px CLIP saved in OpenAI's
layout (`save_small_clip`).

On CPU the toolkit runs fp16 and amp in fp32 (`resolve_precision`); `forced_precision` lifts that
fallback so the CPU twins of the CUDA tests go through the same half-precision code (fp16 CLIP, fp32
learned parameters, autocast, loss scaling) that a GPU runs.
"""

import contextlib
import glob
import itertools
import json
import math
import os
import sys

import torch

import train
from coop_toolkit.method_card import card_of, config_file
from dasslite.engine.build import TRAINER_REGISTRY, build_trainer
from dasslite.engine.checkpoint import load_checkpoint
from dasslite.utils.seed import set_random_seed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_CONFIG = "configs/datasets/oxford_pets.yaml"
# Bound on max |logits - fp32 logits| / max(1, max |fp32 logits|) per PREC. fp16 and amp: the 1e-2 this
# toolkit promises, relative to the largest logit because the logit scale multiplies every rounding
# (14 for the tiny CLIP, 100 for OpenAI's). bf16 keeps 8 significant bits to fp16's 11: 8x wider.
LOGIT_TOLERANCE = {"fp32": 1e-5, "fp16": 1e-2, "amp": 1e-2, "bf16": 8e-2}
STEPS = 4  # training steps per check; up to MAX_STEPS while nothing has changed yet
MAX_STEPS = 12
MAX_SHORT_EPOCHS = 3  # a SHORT_RUN (with the card's short_run) trains at most this many epochs
IMAGE_SIZE = 64  # the tiny CLIP of these checks reads 64-px images: half precision on a CPU is slow
# The GPU runs every trainer's first config, so its CLIP is as deep as ViT-B/16 (every shipped PROMPT_DEPTH,
# at most 12, fits); the CPU twins run CoOp, CoCoOp and zero-shot, which any depth serves, at 2 layers.
GPU_LAYERS, CPU_LAYERS = 12, 2


def save_small_clip(path, layers):
    """A tiny CLIP of `layers` layers at IMAGE_SIZE px, saved as a plain state dict in OpenAI's layout."""
    from tools.tiny_clip import build_tiny_clip, openai_state_dict

    torch.save(openai_state_dict(build_tiny_clip(image_size=IMAGE_SIZE, layers=layers)), str(path))
    return str(path)


def toolkit_trainers():
    """Names of the registered trainers: the toolkit's and the installed plugins' (a test's are left out)."""
    import coop_toolkit.trainers  # noqa: F401  (registers them: a test file run alone may import none yet)

    names = TRAINER_REGISTRY.registered_names()
    return sorted(n for n in names if not TRAINER_REGISTRY.get(n).__module__.startswith("tests."))


def trainer_config(name):
    """The config the trainer's card declares for these checks."""
    path = config_file(card_of(TRAINER_REGISTRY.get(name)), REPO)
    if not path:
        raise AssertionError(
            f"trainer {name} declares no reference config: give its class "
            f'card = MethodCard(reference_config="configs/trainers/{name}/<config>.yaml") (coop_toolkit/method_card.py)'
        )
    return path


def is_trainable(name):
    """Whether the trainer steps learned parameters (zero-shot CLIP and Tip-Adapter's built cache do not)."""
    trainer = TRAINER_REGISTRY.get(name)
    return not trainer.learns_nothing and trainer.learns_by_gradient


def prec_opts(prec):
    """KEY VALUE overrides setting PREC in every trainer config node that has one."""
    cfg = train.setup_cfg(train.parse_args([]))
    nodes = [k for k, v in cfg.TRAINER.items() if hasattr(v, "keys") and "PREC" in v]
    return [item for node in nodes for item in (f"TRAINER.{node}.PREC", prec)]


# A short run: 4 shots, batch 4, 1 epoch, no augmentation, no loader workers, 64-px images.
SHORT_RUN = (
    "DATASET.NUM_SHOTS 4 DATALOADER.NUM_WORKERS 0 DATALOADER.TRAIN_X.BATCH_SIZE 4 DATALOADER.TEST.BATCH_SIZE 10 "
    f"OPTIM.MAX_EPOCH 1 INPUT.SIZE ({IMAGE_SIZE},{IMAGE_SIZE})"
).split()


def run_args(name, root, clip_path, out, prec, use_cuda, extra=()):
    """train.py's arguments for a SHORT_RUN of trainer `name` under `prec` (`extra`: more flags)."""
    config = ["--dataset-config-file", DATASET_CONFIG, "--config-file", trainer_config(name)]
    flags = ["--root", root, "--output-dir", str(out), "--seed", "1", "--trainer", name, *config, *extra]
    opts = ["MODEL.BACKBONE.NAME", clip_path, "USE_CUDA", str(use_cuda), "INPUT.TRANSFORMS", '["normalize"]']
    return flags + opts + SHORT_RUN + list(card_of(TRAINER_REGISTRY.get(name)).short_run) + prec_opts(prec)


def build(name, prec, device, root, clip_path, out):
    args = train.parse_args(run_args(name, root, clip_path, out, prec, device.type == "cuda"))
    set_random_seed(1)
    trainer = build_trainer(train.setup_cfg(args))
    assert trainer.device.type == device.type, f"{name} built on {trainer.device}, not {device}"
    return trainer


def learned_parameters(trainer):
    return {
        f"{model_name}.{name}": p
        for model_name in trainer.get_model_names()
        for name, p in trainer._models[model_name].named_parameters()
        if p.requires_grad
    }


def copy_learned_state(src, dst):
    """dst's registered models take src's values (cast to dst's dtypes): same prompts, other precision."""
    for model_name in src.get_model_names():
        dst._models[model_name].load_state_dict(src._models[model_name].state_dict())


def eval_logits(trainer):
    trainer.set_model_mode("eval")
    image, _ = trainer.parse_batch_test(next(iter(trainer.test_loader)))
    with torch.no_grad():
        return trainer.model_inference(image).float()


def check_precision(name, prec, device, root, clip_path, tmp_path):
    """A few training steps under `prec`: finite losses, fp32 learned parameters that moved, and logits
    within LOGIT_TOLERANCE[prec] (relative) of an fp32 model holding the same learned values."""
    low = build(name, prec, device, root, clip_path, tmp_path / prec)
    ref = build(name, "fp32", device, root, clip_path, tmp_path / "fp32")
    copy_learned_state(ref, low)
    if is_trainable(name):
        learned = learned_parameters(low)
        assert learned, f"{name} has no learned parameters"
        before = {k: p.detach().clone() for k, p in learned.items()}
        low.set_model_mode("train")
        for step, batch in enumerate(itertools.cycle(low.train_loader_x), start=1):
            losses = low.forward_backward(batch)
            assert all(math.isfinite(v) for v in losses.values()), f"{name} {prec}: {losses}"
            # amp's loss scale starts at 2^16 and halves at each step whose fp16 gradients overflow (that
            # step is skipped), so a few first steps may legitimately leave the parameters as they were.
            if step >= MAX_STEPS or (step >= STEPS and any(not torch.equal(before[k], p) for k, p in learned.items())):
                break
        wrong = {k: p.dtype for k, p in learned.items() if p.dtype != torch.float32}
        assert not wrong, f"{name} {prec}: learned parameters not in fp32: {wrong}"
        assert any(not torch.equal(before[k], p) for k, p in learned.items()), (
            f"{name} {prec}: nothing learned in {step}"
        )
        copy_learned_state(low, ref)
    got, expected = eval_logits(low), eval_logits(ref)
    assert torch.isfinite(got).all()
    diff = (got - expected).abs().max().item() / max(1.0, expected.abs().max().item())
    assert diff <= LOGIT_TOLERANCE[prec], f"{name} {prec}: max |logit - fp32 logit| / max |logit| = {diff:.2e}"
    return diff


def read_metrics(out):
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)["metrics"]


def check_checkpoint_and_eval_only(name, prec, use_cuda, root, clip_path, tmp_path):
    """Train one epoch (checkpoint written), then --eval-only from that checkpoint: the same accuracy.

    On CUDA one test image may flip: train.py turns on cudnn.benchmark, which may pick another
    convolution algorithm in the second process, and a random tiny CLIP has near ties.
    """
    trained, again = tmp_path / "trained", tmp_path / "eval_only"
    if TRAINER_REGISTRY.get(name).learns_nothing:
        train.main(run_args(name, root, clip_path, again, prec, use_cuda, extra=("--eval-only",)))
        metrics = read_metrics(again)
        assert metrics["total"] == 10 and 0 <= metrics["accuracy"] <= 100
        return metrics
    train.main(run_args(name, root, clip_path, trained, prec, use_cuda))
    checkpoints = glob.glob(str(trained / "*" / "model.pth.tar-*"))  # the last epoch: 1, or the method's own
    assert checkpoints, f"{name}: no checkpoint in {trained}"
    for path in checkpoints:  # safe to load (weights only), and nothing non-finite was saved
        state = load_checkpoint(path)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path
    last = max(int(path.rsplit("-", 1)[1]) for path in checkpoints)
    assert last <= MAX_SHORT_EPOCHS, (
        f"{name}: a short run trained {last} epochs; its card's short_run should bound its own length "
        f"(coop_toolkit/method_card.py)"
    )
    extra = ("--eval-only", "--model-dir", str(trained), "--load-epoch", str(last))
    train.main(run_args(name, root, clip_path, again, prec, use_cuda, extra=extra))
    first, second = read_metrics(trained), read_metrics(again)
    assert second["total"] == first["total"] == 10
    one_image = 100 / first["total"] if use_cuda else 0
    assert abs(second["accuracy"] - first["accuracy"]) <= one_image + 1e-9, (first, second)
    return second


@contextlib.contextmanager
def forced_precision(monkeypatch):
    """Run fp16 and amp as asked on CPU too (the toolkit otherwise falls back to fp32 there)."""
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("coop_toolkit.")]
    users = [m for m in modules if callable(getattr(m, "resolve_precision", None))]
    originals = {m.resolve_precision for m in users}
    assert len(originals) == 1, f"several resolve_precision functions: {originals}"
    original = originals.pop()

    def as_asked(prec, device, key):
        original(prec, torch.device("cuda"), key)  # the same validation of the value
        return prec

    for module in users:  # every module that imported it by name
        monkeypatch.setattr(module, "resolve_precision", as_asked)
    yield
