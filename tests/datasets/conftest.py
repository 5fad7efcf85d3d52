"""Fixtures for the dataset tests: a config factory and the reference's few-shot algorithm."""

import random
from collections import defaultdict

import pytest

import coop_toolkit.datasets  # noqa: F401  (registers every dataset)


def make_cfg(root, name, num_shots=-1, subsample="all", seed=1):
    try:
        from dasslite.config import get_cfg_default

        cfg = get_cfg_default()
    except ImportError:  # the engine's config not written yet: the keys datasets read
        from yacs.config import CfgNode as CN

        cfg = CN()
        cfg.SEED = -1
        cfg.DATASET = CN()
        cfg.DATASET.ROOT = ""
        cfg.DATASET.NAME = ""
        cfg.DATASET.NUM_SHOTS = -1
        cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


@pytest.fixture
def cfg_factory():
    return make_cfg


def reference_fewshot(data_source, num_shots):
    """Dassl's generate_fewshot_dataset, verbatim in behaviour: the *global* random module."""
    tracker = defaultdict(list)
    for item in data_source:
        tracker[item.label].append(item)
    out = []
    for items in tracker.values():
        out.extend(random.sample(items, num_shots) if len(items) >= num_shots else items)
    return out


def reference_split_trainval(trainval, p_val=0.2):
    """CoOp's OxfordPets.split_trainval with the global random module."""
    tracker = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)
    train, val = [], []
    for idxs in tracker.values():
        n_val = round(len(idxs) * p_val)
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def keys(items):
    return [(d.impath, d.label, d.classname) for d in items]
