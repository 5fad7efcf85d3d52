"""Bit-identity of every registered trainer across a change of the trainer layer (tiny CLIP, CPU, fp32).

Each trainer is built from its first ViT-B/16 yaml (`config_of`) on a 12-layer 64-px tiny
CLIP under seed 1, trains 2 steps on a fixed batch through its own `forward_backward`, and then gives
its registered models' state dicts, its eval logits and its features API (image features, class
features, logit scale). `record` saves them; `compare` checks two records with torch.equal.

    git stash; python benchmarks/learner_check.py record /tmp/before.pt; git stash pop
    python benchmarks/learner_check.py record /tmp/after.pt
    python benchmarks/learner_check.py compare /tmp/before.pt /tmp/after.pt
"""

import glob
import os
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import train  # noqa: E402
from dasslite.engine.build import TRAINER_REGISTRY  # noqa: E402
from dasslite.utils.seed import set_random_seed  # noqa: E402
from tests.precision_matrix import IMAGE_SIZE, save_small_clip  # noqa: E402
from tests.trainers.helpers import CLASSNAMES, bare_trainer  # noqa: E402

STEPS = 2


def trainer_names():
    names = TRAINER_REGISTRY.registered_names()
    return sorted(n for n in names if TRAINER_REGISTRY.get(n).__module__.startswith("coop_toolkit."))


def config_of(name):
    """The trainer's first ViT-B/16 yaml, else its first yaml (ProGrad ships RN50 ones), else CoOp's."""
    folder = os.path.join(REPO, "configs", "trainers", name)
    found = sorted(glob.glob(os.path.join(folder, "vit_b16*.yaml"))) or sorted(
        glob.glob(os.path.join(folder, "*.yaml"))
    )
    return found[0] if found else os.path.join(REPO, "configs", "trainers", "CoOp", "vit_b16.yaml")


def build(name, clip_path):
    args = ["--trainer", name, "--config-file", config_of(name)]
    args += ["--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"), "--seed", "1"]
    args += ["MODEL.BACKBONE.NAME", clip_path, "USE_CUDA", "False", "INPUT.SIZE", f"({IMAGE_SIZE},{IMAGE_SIZE})"]
    args += ["DATASET.SUBSAMPLE_CLASSES", "base"]  # DePT builds its head on base classes only
    cfg = train.setup_cfg(train.parse_args(args))
    cfg.defrost()
    for node in cfg.TRAINER.values():
        if hasattr(node, "keys") and "PREC" in node:
            node.PREC = "fp32"
    cfg.freeze()
    set_random_seed(1)
    return bare_trainer(TRAINER_REGISTRY.get(name), cfg)


def outputs(name, clip_path):
    """{label: tensor} of trainer `name` after STEPS training steps."""
    trainer = build(name, clip_path)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    batch = {"img": images, "label": torch.arange(4) % len(CLASSNAMES)}
    out = {}
    if getattr(trainer, "learned_parameters", dict)():  # zero-shot CLIP and Tip-Adapter learn nothing by gradient
        trainer.set_model_mode("train")
        for step in range(STEPS):
            trainer.batch_idx, trainer.num_batches = step, STEPS
            losses = trainer.forward_backward(batch)
            out.update({f"step{step}.{k}": torch.tensor(v) for k, v in losses.items()})
        for model_name in trainer.get_model_names():
            state = trainer._models[model_name].state_dict()
            out.update({f"state.{model_name}.{k}": v.detach().clone() for k, v in state.items()})
    trainer.set_model_mode("eval")
    with torch.no_grad():
        out["logits"] = trainer.model_inference(images).float()
        image_features = trainer.image_features(images)
        out["image_features"] = image_features
        conditioned = getattr(trainer, "image_conditioned", False)
        out["class_features"] = trainer.class_features(image_features if conditioned else None)
        out["logit_scale"] = torch.as_tensor(trainer.logit_scale())
    return out


def record(path):
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        clip_path = save_small_clip(os.path.join(tmp, "clip.pt"), layers=12)
        everything = {name: outputs(name, clip_path) for name in trainer_names()}
    torch.save(everything, path)
    print(f"{len(everything)} trainers recorded in {path}: {', '.join(everything)}")


def compare(before_path, after_path):
    before, after = torch.load(before_path, weights_only=True), torch.load(after_path, weights_only=True)
    ok = True
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            print(f"{name}: only in {'after' if a is None else 'before'}")
            ok &= a is None  # a trainer added since is fine; one lost is not
            continue
        keys_equal = set(a) == set(b)
        different = [k for k in a if k in b and not (a[k].shape == b[k].shape and torch.equal(a[k], b[k]))]
        same = keys_equal and not different
        ok &= same
        detail = "" if keys_equal else f" keys differ: {sorted(set(a) ^ set(b))}"
        print(f"{name:14s} {len(a):4d} tensors  {'bit-identical' if same else 'DIFFERENT ' + str(different)}{detail}")
    print("all bit-identical" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["record"] and len(sys.argv) == 3:
        record(sys.argv[2])
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
