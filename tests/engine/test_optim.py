"""Optimizer parameter groups and the warmup + multistep / cosine learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from detforge.config import TrainConfig
from detforge.engine.optim import build_optimizer, build_scheduler, lr_factor, split_decay_params
from detforge.engine.plan import RunPlan


def _model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.GroupNorm(1, 2))
    model[0].weight.requires_grad_(False)  # a frozen stage
    return model


def test_no_weight_decay_on_norms_and_biases_and_frozen_params_left_out() -> None:
    model = _model()
    decay, no_decay = split_decay_params(model)
    assert [tuple(p.shape) for p in decay] == [(2, 4, 1, 1)]  # only the trainable conv weight
    assert len(no_decay) == 1 + 2 + 1 + 2  # conv biases, BN weight/bias, GroupNorm weight/bias
    for name in ("sgd", "adamw"):
        opt = build_optimizer(model, TrainConfig(optimizer=name, weight_decay=0.05, lr=0.1, momentum=0.8))
        assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
        assert isinstance(opt, torch.optim.SGD if name == "sgd" else torch.optim.AdamW)
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        assert id(model[0].weight) not in params
    assert build_optimizer(model, TrainConfig(optimizer="adamw", momentum=0.8)).param_groups[0]["betas"] == (0.8, 0.999)


def test_warmup_then_multistep() -> None:
    cfg = TrainConfig(max_iter=100, warmup_iters=10, warmup_factor=0.1, steps=(50, 80), gamma=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(5, cfg) == pytest.approx(0.1 * 0.5 + 0.5)
    assert [lr_factor(i, cfg) for i in (10, 49, 50, 79, 80, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    default_steps = TrainConfig(max_iter=100, warmup_iters=0)
    assert lr_factor(74, default_steps) == 1.0 and lr_factor(75, default_steps) == pytest.approx(0.1)


def test_warmup_then_cosine_and_scheduler_applies_it() -> None:
    cfg = TrainConfig(max_iter=100, warmup_iters=0, scheduler="cosine", lr=0.2)
    assert lr_factor(0, cfg) == 1.0
    assert lr_factor(50, cfg) == pytest.approx(0.5)
    assert lr_factor(100, cfg) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(25, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    model = _model()
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, RunPlan.start(cfg.max_iter))
    for _ in range(50):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.1])
    state = sched.state_dict()
    assert state["last_epoch"] == 50 and all(not callable(v) for v in state.values())
