"""Exponential moving average of a model's weights (evaluated and saved instead of the raw weights)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A copy of `model` whose floating-point parameters and buffers follow
    ``ema = d * ema + (1 - d) * current`` after every optimizer step.

    The decay ramps up as ``d = min(decay, (1 + n) / (10 + n))`` with `n` the number of updates, so the
    early, random weights are forgotten quickly in short runs. Integer buffers (BatchNorm's counters)
    are copied. The copy is in eval mode and has no gradients.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards `model`'s current weights (same architecture as at construction)."""
        self.updates += 1
        d = self.current_decay()
        current = model.state_dict()
        for name, avg in self.module.state_dict().items():
            value = current[name].detach()
            if avg.is_floating_point():
                avg.mul_(d).add_(value.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "decay": self.decay, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
        self.module.load_state_dict(state["module"])
