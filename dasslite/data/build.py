"""The dataset registry and the one function that builds a dataset from the config."""

import logging

from ..registry import Registry

DATASET_REGISTRY = Registry("DATASET")
logger = logging.getLogger(__name__)


def build_dataset(cfg):
    cls = DATASET_REGISTRY.get(cfg.DATASET.NAME)
    logger.info(f"Loading dataset: {cfg.DATASET.NAME}")
    return cls(cfg)
