"""The step and the loop on a toy model: accumulation, clipping, EMA, non-finite losses, hooks, RNG state."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from detforge.config import load_config
from detforge.data.loader import Batch
from detforge.data.sampler import TrainingSampler
from detforge.engine.distributed import DistInfo
from detforge.engine.ema import ModelEMA
from detforge.engine.logs import TrainLogger
from detforge.engine.loop import AmpSettings, Hook, LossModule, Trainer, get_rng_state, set_rng_state
from detforge.engine.optim import build_optimizer, build_scheduler
from detforge.engine.plan import RunPlan
from detforge.engine.result import TrainingDiverged
from detforge.structures.detections import Target


class ToyDetector(nn.Module):
    """loss_a = mean((w * x)^2) over the batch images; loss_b = |b| (a second term)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3, 1, 1))
        self.b = nn.Parameter(torch.tensor(0.5))
        self.poison_at: int | None = None
        self.calls = 0

    def forward_loss(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        self.calls += 1
        loss_a = torch.stack([((self.w * im) ** 2).mean() for im in images]).mean()
        if self.poison_at == self.calls:
            loss_a = loss_a * float("inf")
        return {"loss_a": loss_a, "loss_b": self.b.abs()}


def _batches(n: int) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    target = Target(torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.int64), 1)
    return [Batch([torch.rand(3, 4, 4, generator=g) for _ in range(2)], [target, target]) for _ in range(n)]


class ToyLoader:
    """Batches in order from the sampler's position, like `build_loader` with an unshuffled sampler."""

    def __init__(self, batches: list[Batch], sampler: TrainingSampler) -> None:
        self.batches, self.sampler = batches, sampler

    def __iter__(self):  # type: ignore[no-untyped-def]
        size = len(self.batches[0])
        return iter(self.batches[self.sampler.position // size :])


def _trainer(tmp_path: Path, *overrides: str, batches: list[Batch] | None = None) -> Trainer:
    config = load_config(
        None, ["train.warmup_iters=0", "train.lr=0.1", "train.weight_decay=0", "train.max_iter=4", *overrides]
    )
    detector = ToyDetector()
    optimizer = build_optimizer(detector, config.train)
    batches = batches or _batches(8)
    sampler = TrainingSampler(sum(len(b) for b in batches), shuffle=False)
    plan = RunPlan.start(config.train.max_iter)
    return Trainer(
        config=config,
        detector=detector,  # type: ignore[arg-type]
        module=LossModule(detector),
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config.train, plan),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        ema=ModelEMA(detector, config.train.ema_decay) if config.train.ema else None,
        sampler=sampler,
        loader=ToyLoader(batches, sampler),
        device=torch.device("cpu"),
        dist=DistInfo(),
        amp=AmpSettings(),
        log=TrainLogger(tmp_path, total=4, start=0, enabled=False, progress=False),
        checkpoint_dir=tmp_path / "checkpoints",
        plan=plan,
    )


def test_accumulated_step_equals_one_big_batch(tmp_path: Path) -> None:
    two = _batches(2)
    big = [Batch(two[0].images + two[1].images, two[0].targets + two[1].targets)]
    acc = _trainer(tmp_path, "train.accumulate=2", batches=two)
    one = _trainer(tmp_path, batches=big)
    losses_acc, losses_one = acc.step(), one.step()
    assert acc.sampler.position == 4 and one.sampler.position == 4
    assert torch.allclose(acc.detector.w, one.detector.w, atol=1e-7)  # type: ignore[attr-defined]
    assert losses_acc["loss_a"] == pytest.approx(losses_one["loss_a"], rel=1e-6)
    assert losses_acc["loss"] == pytest.approx(losses_acc["loss_a"] + losses_acc["loss_b"])


def test_gradient_clipping_bounds_the_update(tmp_path: Path) -> None:
    clipped = _trainer(tmp_path, "train.clip_grad_norm=0.001", "train.momentum=0")
    before = [p.detach().clone() for p in clipped.detector.parameters()]
    clipped.step()
    delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(clipped.detector.parameters(), before, strict=True)])
    assert float(delta.norm()) == pytest.approx(0.1 * 0.001, rel=1e-4)  # lr x max norm


def test_ema_follows_the_weights(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.ema=true", "train.ema_decay=0.5")
    assert trainer.ema is not None and trainer.eval_model is trainer.ema.module
    start = trainer.detector.b.detach().clone()  # type: ignore[attr-defined]
    trainer.step()
    d = min(0.5, 2 / 11)  # ramped decay at the first update
    expected = d * start + (1 - d) * trainer.detector.b.detach()  # type: ignore[attr-defined]
    assert torch.allclose(trainer.ema.module.b, expected)
    assert trainer.ema.state_dict()["updates"] == 1


def test_non_finite_loss_stops_before_the_update(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path)
    trainer.detector.poison_at = 2  # type: ignore[assignment]
    trainer.step()
    trainer.state.iteration = 1
    before = trainer.detector.w.detach().clone()  # type: ignore[attr-defined]
    with pytest.raises(TrainingDiverged) as info:
        trainer.step()
    message = str(info.value)
    assert "not finite at iteration 2" in message
    assert "loss_a=inf" in message and "loss_b=0.4" in message
    assert "no checkpoint had been written yet" in message
    assert torch.equal(trainer.detector.w, before)  # type: ignore[attr-defined]


def test_loop_runs_hooks_and_stops_when_a_hook_asks(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    class Recorder(Hook):
        def before_train(self, trainer: Trainer) -> None:
            seen.append(("before", trainer.state.iteration))

        def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
            seen.append(("step", trainer.state.iteration))
            if trainer.state.iteration == 3:
                trainer.state.stop_reason = "early_stopping"

        def after_train(self, trainer: Trainer) -> None:
            seen.append(("after", trainer.state.iteration))

    trainer = _trainer(tmp_path, "train.max_iter=10")
    trainer.run([Recorder()])
    assert seen == [("before", 0), ("step", 1), ("step", 2), ("step", 3), ("after", 3)]
    assert trainer.state.stop_reason == "early_stopping"
    full = _trainer(tmp_path, "train.max_iter=5")  # 8 batches of 2 per epoch: no epoch change needed
    full.run([])
    assert full.state.iteration == 5 and full.state.stop_reason == "max_iter"


def test_epochs_roll_over(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.max_iter=5", batches=_batches(2))
    trainer.run([])
    assert trainer.sampler.epoch == 2 and trainer.sampler.position == 2


def test_trainer_state_round_trip(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "train.ema=true")
    trainer.step()
    trainer.state.iteration, trainer.state.best_metric, trainer.state.bad_evals = 1, 0.25, 2
    saved = trainer.state_dict()
    other = _trainer(tmp_path, "train.ema=true")
    other.load_state_dict(saved)
    assert (other.state.iteration, other.state.best_metric, other.state.bad_evals) == (1, 0.25, 2)
    assert torch.equal(other.detector.w, trainer.detector.w)  # type: ignore[attr-defined]
    assert other.sampler.state_dict() == trainer.sampler.state_dict()
    assert other.step() == trainer.step()  # continues identically


def test_rng_state_round_trip() -> None:
    state = get_rng_state(torch.device("cpu"))
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    set_rng_state(state, torch.device("cpu"))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
