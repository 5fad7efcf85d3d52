"""The trainer registry and build_trainer.

Contract: ``@TRAINER_REGISTRY.register()`` on a TrainerX subclass registers it under its class name,
which users select with TRAINER.NAME (--trainer). The class is constructed with the frozen cfg, and
with `classnames` when the model is to be built for a class list instead of the dataset's.
"""

import logging

from ..registry import Registry, UnknownNameError, unknown_name_message

logger = logging.getLogger(__name__)
TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg, classnames=None):
    name = cfg.TRAINER.NAME
    if name not in TRAINER_REGISTRY:
        raise UnknownNameError(
            unknown_name_message(
                "trainer", name, TRAINER_REGISTRY.registered_names(), hint="(config key TRAINER.NAME / flag --trainer)"
            )
        )
    logger.info(f"Loading trainer: {name}")
    if classnames is None:
        return TRAINER_REGISTRY.get(name)(cfg)
    return TRAINER_REGISTRY.get(name)(cfg, classnames=classnames)
