"""CLIP prompt learners, registered with the engine's TRAINER_REGISTRY when this package is imported."""

from . import cocoop, coop, zsclip  # noqa: F401  (registers CoOp, CoCoOp, ZeroshotCLIP, ZeroshotCLIP2)


def extend_cfg(cfg):
    """Add every trainer's own config node (TRAINER.COOP, TRAINER.COCOOP) to the engine defaults.

    All nodes are added whatever the trainer, as in the original, so any trainer yaml merges.
    """
    coop.add_config(cfg)
    cocoop.add_config(cfg)
