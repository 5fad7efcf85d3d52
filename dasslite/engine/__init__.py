from .build import TRAINER_REGISTRY, build_trainer
from .checkpoint import load_checkpoint, save_checkpoint
from .hooks import HookBase
from .trainer import SimpleTrainer, TrainerBase, TrainerX

__all__ = [
    "TRAINER_REGISTRY",
    "build_trainer",
    "load_checkpoint",
    "save_checkpoint",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "TrainerX",
]
