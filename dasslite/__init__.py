"""dasslite: a small engine with Dassl's public names (a Dassl trainer ports by changing its imports).

The names are imported on first use (PEP 562), so light modules such as `dasslite.log_format` load
without torch: the log readers (parse_test_res.py, results.py) need only those.
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "get_cfg_default": ".config",
    "DATASET_REGISTRY": ".data.build",
    "build_dataset": ".data.build",
    "DataManager": ".data.data_manager",
    "DatasetWrapper": ".data.data_manager",
    "Datum": ".data.datum",
    "build_transform": ".data.transforms",
    "TRAINER_REGISTRY": ".engine",
    "HookBase": ".engine",
    "SimpleTrainer": ".engine",
    "TrainerBase": ".engine",
    "TrainerX": ".engine",
    "build_trainer": ".engine",
    "load_checkpoint": ".engine",
    "save_checkpoint": ".engine",
    "EVALUATOR_REGISTRY": ".evaluation",
    "Classification": ".evaluation",
    "build_evaluator": ".evaluation",
    "write_metrics_json": ".evaluation",
    "build_lr_scheduler": ".optim",
    "build_optimizer": ".optim",
    "Registry": ".registry",
    "UnknownNameError": ".registry",
    "setup_logger": ".utils.logger",
    "set_random_seed": ".utils.seed",
    "collect_env_info": ".utils.tools",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
