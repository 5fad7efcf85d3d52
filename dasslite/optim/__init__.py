from .lr_scheduler import AVAILABLE_LR_SCHEDULERS, ConstantWarmupScheduler, LinearWarmupScheduler, build_lr_scheduler
from .optimizer import AVAILABLE_OPTIMIZERS, build_optimizer

__all__ = [
    "AVAILABLE_LR_SCHEDULERS",
    "ConstantWarmupScheduler",
    "LinearWarmupScheduler",
    "build_lr_scheduler",
    "AVAILABLE_OPTIMIZERS",
    "build_optimizer",
]
