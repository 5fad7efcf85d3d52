"""Projected wall time of the base-to-new tables (11 datasets x 3 seeds) from measured per-step times.

A run of the protocol (scripts/tables/base2new.sh) trains on the 16-shot base half of a dataset for the
config's epochs, tests on the base test images at the end of training, and then evaluates the new
test images (--eval-only). Its compute is therefore

    epochs x steps per epoch x (one training step at the config's batch, base classes)
    + base test images x (one test image at the test batch, base classes)
    + new test images x (one test image at the test batch, new classes)

per seed. The cost of a training step and of a test image is affine in the number of classes (the
text encoder's work grows with it, the image encoder's does not), so two measurements, at the
smallest and the largest class count of the tables, fix it for every dataset. Data loading, model
loading and process start-up are not counted: the projection is of the model's computation only.
"""

import dataclasses
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHOTS = 16
SEEDS = 3


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A benchmark of the base-to-new tables. Base = the first ceil(classes / 2) labels, new = the rest."""

    name: str  # as in configs/datasets/<name>.yaml
    classes: int
    test_base: int  # test images of the base classes
    test_new: int  # test images of the new classes

    @property
    def base_classes(self):
        return math.ceil(self.classes / 2)

    @property
    def new_classes(self):
        return self.classes - self.base_classes


# Class counts and test images of CoOp's split files (split_zhou_<Name>.json; ImageNet: the 50,000
# ILSVRC validation images, 50 per class; FGVCAircraft: the official test list), split into the base
# and new halves as the base-to-new runs count them ("* total: ..." in their test logs). Totals:
# ImageNet 50,000, Caltech101 2,465, OxfordPets 3,669, StanfordCars 8,041, Flowers102 2,463,
# Food101 30,300, FGVCAircraft 3,333, SUN397 19,850, DTD 1,692, EuroSAT 8,100, UCF101 3,783.
DATASETS = [
    Dataset("imagenet", 1000, 25000, 25000),
    Dataset("caltech101", 100, 1549, 916),
    Dataset("oxford_pets", 37, 1881, 1788),
    Dataset("stanford_cars", 196, 4002, 4039),
    Dataset("oxford_flowers", 102, 1053, 1410),
    Dataset("food101", 101, 15300, 15000),
    Dataset("fgvc_aircraft", 100, 1666, 1667),
    Dataset("sun397", 397, 9950, 9900),
    Dataset("dtd", 47, 864, 828),
    Dataset("eurosat", 10, 4200, 3900),
    Dataset("ucf101", 101, 1934, 1849),
]


def base2new_configs():
    """Trainer -> (its config for ten datasets, its config for ImageNet) as scripts/tables/base2new.sh runs
    them (configs/trainers/<trainer>/<name>.yaml), from each trainer's card (`base2new_configs`). The
    successors' configs are the ones their authors' base-to-new scripts run. ProGrad's script runs
    rn50_ep100: its schedule (100 epochs at batch 32) is projected at the ViT-B/16 sizes of the other rows."""
    import coop_toolkit.trainers  # noqa: F401  (registers every trainer)
    from coop_toolkit.method_card import card_of
    from dasslite.engine.build import TRAINER_REGISTRY

    cards = {name: card_of(TRAINER_REGISTRY.get(name)) for name in TRAINER_REGISTRY.registered_names()}
    return {name: card.base2new_configs for name, card in cards.items() if card.base2new_configs}


BASE2NEW_CONFIGS = base2new_configs()


@dataclasses.dataclass(frozen=True)
class Protocol:
    epochs: int
    batch: int
    test_batch: int


def config_path(trainer, dataset):
    """The shipped config (configs/trainers/<trainer>/<name>.yaml) the table runs for `dataset`."""
    config = BASE2NEW_CONFIGS[trainer][1 if dataset == "imagenet" else 0]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(repo, "configs", "trainers", trainer, f"{config}.yaml")


def read_protocol(trainer, dataset):
    """Epochs, training batch and test batch of the shipped config the table runs for `dataset`."""
    import train

    cfg = train.setup_cfg(train.parse_args(["--config-file", config_path(trainer, dataset)]))
    return Protocol(cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE)


@dataclasses.dataclass(frozen=True)
class Affine:
    """seconds(classes) = fixed + per_class x classes."""

    fixed: float
    per_class: float

    @classmethod
    def through(cls, low, high):
        """The line through two (classes, seconds) measurements."""
        (c0, s0), (c1, s1) = low, high
        per_class = (s1 - s0) / (c1 - c0)
        return cls(s0 - per_class * c0, per_class)

    def __call__(self, classes):
        return max(self.fixed + self.per_class * classes, 0.0)


@dataclasses.dataclass(frozen=True)
class StepTimes:
    train_step: Affine  # seconds per training step at the protocol's batch
    test_image: Affine  # seconds per test image at the protocol's test batch


def class_range(datasets=DATASETS):
    """The smallest and the largest class count a step of the tables sees (base or new half)."""
    counts = [n for d in datasets for n in (d.base_classes, d.new_classes)]
    return min(counts), max(counts)


def steps_per_epoch(images, batch):
    """Training steps in an epoch: the loader drops the last partial batch when a full one exists."""
    return images // batch if images >= batch else 1


def project(dataset, protocol, times, seeds=SEEDS, shots=SHOTS):
    """Seconds of training and of testing for `seeds` runs of one dataset."""
    steps = protocol.epochs * steps_per_epoch(shots * dataset.base_classes, protocol.batch)
    train_s = steps * times.train_step(dataset.base_classes)
    test_s = dataset.test_base * times.test_image(dataset.base_classes)
    test_s += dataset.test_new * times.test_image(dataset.new_classes)
    return {"steps": steps, "train s": seeds * train_s, "test s": seeds * test_s}


def project_table(trainer, times, datasets=DATASETS, seeds=SEEDS):
    """One row per dataset and a total: training, testing and overall hours of the trainer's table."""
    rows = []
    for dataset in datasets:
        p = project(dataset, read_protocol(trainer, dataset.name), times, seeds)
        rows.append(
            {"dataset": dataset.name, "train steps": p["steps"], "train s": p["train s"], "test s": p["test s"]}
        )
    total = {"dataset": "total", "train steps": sum(r["train steps"] for r in rows)}
    total.update({k: sum(r[k] for r in rows) for k in ("train s", "test s")})
    return rows + [total]
