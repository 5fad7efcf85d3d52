"""A toy dataset (tiny PNGs whose colour encodes the class) and a linear TrainerX over it."""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from dasslite.config import get_cfg_default
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import DatasetBase
from dasslite.data.datum import Datum
from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.engine.trainer import TrainerX
from dasslite.optim.lr_scheduler import build_lr_scheduler
from dasslite.optim.optimizer import build_optimizer
from tests.helpers import set_keys

CLASSNAMES = ["red", "green", "blue", "gray"]
SPLITS = {"train": 8, "val": 2, "test": 4}  # images per class


def make_toy_images(root, splits=SPLITS, size=8, seed=0):
    """root/<split>/<class>/<i>.png: noise around a class colour, so a linear model can learn it."""
    rng = np.random.default_rng(seed)
    centers = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (128, 128, 128)]
    for split, per_class in splits.items():
        for label, name in enumerate(CLASSNAMES):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(centers[label], 60, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))
    return str(root)


def read_split(root, split):
    items = []
    for label, name in enumerate(CLASSNAMES):
        folder = os.path.join(root, split, name)
        if os.path.isdir(folder):
            items += [Datum(os.path.join(folder, f), label, 0, name) for f in sorted(os.listdir(folder))]
    return items


@DATASET_REGISTRY.register()
class ToyColors(DatasetBase):
    def __init__(self, cfg):
        root = cfg.DATASET.ROOT
        super().__init__(train_x=read_split(root, "train"), val=read_split(root, "val"), test=read_split(root, "test"))


@TRAINER_REGISTRY.register()
class ToyLinear(TrainerX):
    nan_at = None  # (epoch, batch), 1-based: make that batch's loss NaN

    def build_model(self):
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, self.num_classes))
        self.frozen = nn.Dropout(0.5).eval()  # not registered: the engine must leave it in eval mode
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("linear", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        if self.nan_at == (self.epoch + 1, self.batch_idx + 1):
            loss = loss * float("nan")
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), "acc": (output.argmax(1) == label).float().mean().item() * 100}


def toy_cfg(root, output_dir, **opts):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = "ToyColors"
    cfg.TRAINER.NAME = "ToyLinear"
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.SEED = 1
    cfg.INPUT.SIZE = (8, 8)
    cfg.INPUT.TRANSFORMS = ("random_flip", "normalize")
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 8
    cfg.DATALOADER.TEST.BATCH_SIZE = 5
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.05
    cfg.OPTIM.MAX_EPOCH = 4
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.TRAIN.PRINT_FREQ = 2
    cfg.TEST.FINAL_MODEL = "last_step"
    return set_keys(cfg, opts, sep="__")


def params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def same_params(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
