"""CLIP prompt learners, registered with the engine's TRAINER_REGISTRY when this package is imported.

Every module of this package is imported here, so a method is added by adding its file: its
`@TRAINER_REGISTRY.register()` class registers itself and brings its config nodes (`add_config`).
"""

import importlib
import pkgutil

from dasslite.engine.build import TRAINER_REGISTRY

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def extend_cfg(cfg):
    """Add every registered trainer's own config nodes (TRAINER.COOP, TRAINER.COCOOP, ...) to `cfg`.

    All nodes are added whatever the trainer, as in the original, so any trainer's yaml merges.
    """
    for name in TRAINER_REGISTRY.registered_names():
        add_config = getattr(TRAINER_REGISTRY.get(name), "add_config", None)
        if add_config is not None:
            add_config(cfg)
