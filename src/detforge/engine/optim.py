"""Optimizer (no weight decay on norms and biases) and the learning-rate schedule: linear warmup, then
multistep or cosine decay, over the run plan's schedule positions."""

from __future__ import annotations

import math

import torch
from torch import nn

from detforge.config import TrainConfig
from detforge.engine.plan import RunPlan

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "split_decay_params"]

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def split_decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters split into (with weight decay, without): biases and every parameter of a
    normalisation layer (BatchNorm, GroupNorm, LayerNorm, torchvision's FrozenBatchNorm) get none."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES) or "norm" in type(module).__name__.lower()
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if is_norm or name == "bias" or param.ndim <= 1 else decay).append(param)
    return decay, no_decay


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum `cfg.momentum`) or AdamW (betas `(cfg.momentum, 0.999)`) over the trainable
    parameters, at `cfg.lr`, with `cfg.weight_decay` on weights only (group 0) and none on norms/biases
    (group 1)."""
    decay, no_decay = split_decay_params(model)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (check model.trainable_backbone_layers)")
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def lr_factor(position: float, cfg: TrainConfig) -> float:
    """The LR multiplier at schedule `position` (the iteration number of a run that keeps its max_iter;
    see RunPlan): linear warmup from `warmup_factor` to 1 over `warmup_iters`, times the decay
    (multistep: `gamma` per passed step; cosine: half cosine to 0 at `max_iter`)."""
    if cfg.scheduler == "multistep":
        decay = cfg.gamma ** sum(1 for s in cfg.lr_steps if position >= s)
    else:
        progress = min(position, cfg.max_iter) / cfg.max_iter
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    if position < cfg.warmup_iters:
        alpha = position / cfg.warmup_iters
        decay *= cfg.warmup_factor * (1 - alpha) + alpha
    return decay


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, plan: RunPlan
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR applying `lr_factor` at `plan`'s position of each iteration (a refit of the plan moves
    the rest of the schedule); call `.step()` once after each optimizer step. Its state dict holds plain
    values only (the factor function is rebuilt from the config and the plan)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(plan.position(it), cfg))
