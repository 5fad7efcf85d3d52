"""dasslite: a small engine with Dassl's public names (a Dassl trainer ports by changing its imports)."""

from .config import get_cfg_default
from .data.build import DATASET_REGISTRY, build_dataset
from .data.data_manager import DataManager, DatasetWrapper
from .data.datum import Datum
from .data.transforms import build_transform
from .engine import (
    TRAINER_REGISTRY,
    HookBase,
    SimpleTrainer,
    TrainerBase,
    TrainerX,
    build_trainer,
    load_checkpoint,
    save_checkpoint,
)
from .evaluation import EVALUATOR_REGISTRY, Classification, build_evaluator, write_metrics_json
from .optim import build_lr_scheduler, build_optimizer
from .registry import Registry, UnknownNameError
from .utils.logger import setup_logger
from .utils.seed import set_random_seed
from .utils.tools import collect_env_info

__version__ = "0.1.0"

__all__ = [
    "get_cfg_default",
    "DATASET_REGISTRY",
    "build_dataset",
    "DataManager",
    "DatasetWrapper",
    "Datum",
    "build_transform",
    "TRAINER_REGISTRY",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "TrainerX",
    "build_trainer",
    "load_checkpoint",
    "save_checkpoint",
    "EVALUATOR_REGISTRY",
    "Classification",
    "build_evaluator",
    "write_metrics_json",
    "build_lr_scheduler",
    "build_optimizer",
    "Registry",
    "UnknownNameError",
    "setup_logger",
    "set_random_seed",
    "collect_env_info",
]
