"""Optimizers by name (OPTIM.NAME), with Dassl's argument mapping
(docs/reference-behaviour.md, "Optimizer and learning-rate schedule")."""

import logging

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..registry import unknown_name_message

logger = logging.getLogger(__name__)

AVAILABLE_OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw")


def _param_groups(module_or_params, cfg):
    """Parameters to optimise; with STAGED_LR, layers not in NEW_LAYERS get LR * BASE_LR_MULT."""
    if not isinstance(module_or_params, nn.Module):
        if cfg.STAGED_LR:
            raise ConfigError("OPTIM.STAGED_LR needs an nn.Module (to find OPTIM.NEW_LAYERS), not a parameter list")
        return module_or_params
    module = module_or_params.module if hasattr(module_or_params, "module") else module_or_params
    if not cfg.STAGED_LR:
        return module.parameters()
    new_layers = [cfg.NEW_LAYERS] if isinstance(cfg.NEW_LAYERS, str) else list(cfg.NEW_LAYERS)
    if not new_layers:
        raise ConfigError("OPTIM.STAGED_LR is True but OPTIM.NEW_LAYERS is empty")
    children = dict(module.named_children())
    missing = [name for name in new_layers if name not in children]
    if missing:
        raise ConfigError(
            f"OPTIM.NEW_LAYERS names {missing}, which are not children of the module (children: {sorted(children)})"
        )
    base = [p for n, m in children.items() if n not in new_layers for p in m.parameters()]
    new = [p for n in new_layers for p in children[n].parameters()]
    return [{"params": base, "lr": cfg.LR * cfg.BASE_LR_MULT}, {"params": new}]


def build_optimizer(module_or_params, optim_cfg):
    """An optimizer for an nn.Module's parameters (or an iterable of parameters / param groups)."""
    name, lr, wd = optim_cfg.NAME, optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    if name not in AVAILABLE_OPTIMIZERS:
        raise ConfigError(unknown_name_message("optimizer", name, AVAILABLE_OPTIMIZERS, hint="(config key OPTIM.NAME)"))
    params = _param_groups(module_or_params, optim_cfg)
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    eps = optim_cfg.ADAM_EPS
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=wd,
            dampening=optim_cfg.SGD_DAMPNING,
            nesterov=optim_cfg.SGD_NESTEROV,
        )
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=betas, eps=eps, amsgrad=name == "amsgrad")
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd, alpha=optim_cfg.RMSPROP_ALPHA
        )
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, weight_decay=wd, betas=betas, eps=eps)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=betas, eps=eps)
