"""CLIP methods, registered with the engine's TRAINER_REGISTRY when this package is imported.

Every module of this package is imported here, so a method is added by adding its file: its
`@TRAINER_REGISTRY.register()` class registers itself and brings its config nodes (`add_config`).
Then the installed plugins' trainers (entry point group `coop_toolkit.trainers`: coop_toolkit/plugins.py).
"""

import importlib
import pkgutil

from dasslite.engine.build import TRAINER_REGISTRY

from ..plugins import load_entry_points

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


load_entry_points("trainer")  # last: a plugin may import anything of this package
