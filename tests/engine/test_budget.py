"""The time budget: the run plan, its fit to measured costs, and whole `--time` runs on a fake clock
whose training steps, evaluations and saves cost what a slow or a fast machine would."""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from detforge.config import Config, TrainConfig
from detforge.engine import TrainResult, train_from_config
from detforge.engine.checkpoint import load_checkpoint
from detforge.engine.logs import read_metrics
from detforge.engine.loop import Trainer
from detforge.engine.optim import lr_factor
from detforge.engine.plan import Costs, RunPlan, count_between, fit_to_budget

pytestmark = pytest.mark.timeout(300)


def test_a_refit_keeps_the_lr_continuous_and_ends_the_whole_schedule_at_the_new_end() -> None:
    for scheduler in ("multistep", "cosine"):
        cfg = TrainConfig(max_iter=100, warmup_iters=10, scheduler=scheduler)
        plan = RunPlan.start(100)
        assert [plan.position(i) for i in (0, 7, 100)] == [0, 7, 100]  # positions are iterations until a refit
        before = [lr_factor(plan.position(i), cfg) for i in range(31)]
        plan.refit(30, 58, eval_stride=1)  # a slow machine: 28 iterations left instead of 70
        lrs = before + [lr_factor(plan.position(i), cfg) for i in range(31, 59)]
        assert lr_factor(plan.position(30), cfg) == before[30]
        assert plan.position(58) == 100 and plan.position(44) == pytest.approx(30 + 70 * 14 / 28)
        drops = [b / a for a, b in pairwise(lrs) if b < 0.8 * a]
        if scheduler == "multistep":  # the only drops are the two decay steps, now at 75% and 90% of 58
            assert drops == pytest.approx([0.1, 0.1])
            assert plan.iteration_at(75) == 48 and plan.iteration_at(90) == 54
            assert lrs[47] == 1.0 and lrs[48] == pytest.approx(0.1) and lrs[57] == pytest.approx(0.01)
        else:  # a half cosine: continuous down to ~0 at the new end
            assert max(abs(b - a) for a, b in pairwise(lrs[10:])) < 0.05
            assert lrs[57] < 0.002 and all(b <= a for a, b in pairwise(lrs[10:]))


def test_evaluations_and_saves_follow_the_schedule_positions() -> None:
    plan = RunPlan.start(20)
    assert [i for i in range(1, 21) if plan.due(i, 5)] == [5, 10, 15, 20]
    plan.refit(5, 35, eval_stride=1)  # 15 positions over 30 iterations: one evaluation point every 10 iterations
    assert [i for i in range(6, 36) if plan.due(i, 5)] == [15, 25, 35]
    shrunk = RunPlan.start(100)
    assert shrunk.due(15, 15)
    shrunk.refit(16, 30, eval_stride=1)  # 6 positions per iteration from here: no second evaluation at 16
    assert [i for i in range(16, 31) if shrunk.due(i, 15)] == [19, 21, 24, 26, 29]  # positions 30, 45, ... 90
    assert count_between(5.0, 20.0, 5) == 2 and count_between(4.9, 20.0, 5) == 3 and count_between(0, 3, 5) == 0


def test_fit_to_budget_by_hand() -> None:
    plan = RunPlan.start(100)
    costs = Costs(iteration_s=1.0, eval_s=5.0, checkpoint_s=0.5)
    fit = fit_to_budget(plan, 10, 100.0, costs, eval_period=20, evaluates=True, checkpoint_period=None, cap=None)
    # left: evaluations at positions 20, 40, 60, 80 + the final one (25 s), as many saves (2.5 s): 72 iterations
    assert (fit.max_iter, fit.eval_stride, fit.evals, fit.saves) == (82, 1, 4, 4)
    assert fit.needed_s == pytest.approx(72 + 27.5)
    capped = fit_to_budget(plan, 10, 100.0, costs, eval_period=20, evaluates=True, checkpoint_period=None, cap=50)
    assert capped.max_iter == 50
    # evaluations at 10 s each would take 40 s of the 100 left (> 20%): every 2nd point is kept (40, 80)
    slow = fit_to_budget(plan, 10, 100.0, Costs(1.0, 10.0, 0.0), eval_period=20, evaluates=True,
                         checkpoint_period=7, cap=None)  # fmt: skip
    assert (slow.eval_stride, slow.evals, slow.max_iter) == (2, 2, 10 + 100 - 30)
    none = fit_to_budget(plan, 10, 4.0, Costs(1.0, 5.0, 0.0), eval_period=20, evaluates=True,
                         checkpoint_period=None, cap=None)  # fmt: skip
    assert none.max_iter <= 10  # not even the final evaluation fits


class Killed(BaseException):
    """The process is killed in the middle of a step."""


class Machine:
    """The clock the engine measures with (it moves only when a step, an evaluation or a save says so) and
    what those cost on the machine it pretends to be; their real work still runs on the tiny model."""

    def __init__(self, step_s: float, eval_s: float, save_s: float) -> None:
        self.t, self.step_s, self.eval_s, self.save_s = 1000.0, step_s, eval_s, save_s
        self.steps, self.kill_at = 0, 0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Machine]:
    """`machine(step_s, eval_s, save_s)`: the engine's clock replaced by a `Machine` (installed once)."""
    from detforge.engine import callbacks, train_job

    def install(step_s: float, eval_s: float = 3.0, save_s: float = 0.2) -> Machine:
        clock = Machine(step_s, eval_s, save_s)
        monkeypatch.setattr("detforge.engine.plan.now", clock)
        real_step, real_eval, real_save = Trainer.step, train_job.run_evaluation, callbacks.save_last

        def step(self: Trainer) -> dict[str, float]:
            clock.steps += 1
            if clock.steps == clock.kill_at:
                raise Killed
            clock.t += clock.step_s
            return real_step(self)

        def evaluate(*args: Any, **kwargs: Any) -> Any:
            clock.t += clock.eval_s
            return real_eval(*args, **kwargs)

        def save(*args: Any, **kwargs: Any) -> Any:
            clock.t += clock.save_s
            return real_save(*args, **kwargs)

        monkeypatch.setattr(Trainer, "step", step)
        monkeypatch.setattr(train_job, "run_evaluation", evaluate)
        monkeypatch.setattr(callbacks, "save_last", save)
        return clock

    return install


def _lrs(run: Path) -> dict[int, float]:
    """The LR each step used: a "train" event at iteration i logs the LR set for step i + 1."""
    events = [e for e in read_metrics(run) if e["event"] == "train"]
    return {e["iteration"] + 1: e["lr"] for e in events} | {1: 0.01 * 0.001}


def _run(config: Config, out: Path, clock: Machine) -> tuple[TrainResult, float]:
    start = clock.t
    result = train_from_config(config, out_dir=out, progress=False)
    return result, clock.t - start


@pytest.mark.usefixtures("tiny_detector")
def test_a_slow_machine_ends_the_whole_schedule_within_the_budget(
    make_config: Callable[..., Config], machine: Callable[..., Machine], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # 60 iterations planned; at 2 s per step they would take 120 s of a 60 s budget
    clock = machine(step_s=2.0, eval_s=3.0, save_s=0.2)
    config = make_config("train.max_iter=60", "train.warmup_iters=6", "eval.period=15", "train.time=1m")
    with caplog.at_level(logging.INFO, logger="detforge.train"):
        result, used = _run(config, tmp_path / "run", clock)
    assert result.stop_reason == "time_budget"
    assert 0.85 * 60 <= used <= 60.0 and 20 <= result.iterations <= 26
    lrs = _lrs(tmp_path / "run")
    assert lrs[result.iterations] == pytest.approx(0.01 * 0.1 * 0.1)  # the last step ran at the fully decayed LR
    ratios = [lrs[i + 1] / lrs[i] for i in range(1, result.iterations)]
    assert sorted(r for r in ratios if r < 0.9) == pytest.approx([0.1, 0.1])  # the decay steps, no other drop
    plans = [e for e in read_metrics(tmp_path / "run") if e["event"] == "plan"]
    assert plans[0]["reason"] == "first measurement" and plans[0]["previous_max_iter"] == 60
    assert plans[0]["iteration_s"] == pytest.approx(2.0) and plans[-1]["max_iter"] == result.iterations
    assert "time budget 1m (first measurement): 2.00 s per iteration measured" in caplog.text
    evals = [e for e in read_metrics(tmp_path / "run") if e["event"] == "eval"]
    assert evals[-1]["iteration"] == result.iterations and len(evals) >= 3  # periodic points moved, final one kept


@pytest.mark.usefixtures("tiny_detector")
def test_a_fast_machine_uses_the_budget_when_the_budget_sizes_the_run(
    make_config: Callable[..., Config], machine: Callable[..., Machine], tmp_path: Path
) -> None:
    # starting plan 20 iterations (an estimate); at 1 s per step the 40 s budget holds about 30
    clock = machine(step_s=1.0, eval_s=1.0, save_s=0.1)
    config = make_config("train.max_iter=20", "train.time_fit=fill", "eval.period=5", "train.time=40s")
    result, used = _run(config, tmp_path / "run", clock)
    assert result.stop_reason == "time_budget"
    assert 0.9 * 40 <= used <= 40.0 and result.iterations >= 28
    lrs = _lrs(tmp_path / "run")
    assert lrs[result.iterations] == pytest.approx(0.01 * 0.01)
    # the same budget as a limit keeps the 20 iterations the user asked for
    limited, _ = _run(make_config("train.max_iter=20", "eval.period=5", "train.time=40s"), tmp_path / "lim", clock)
    assert (limited.stop_reason, limited.iterations) == ("max_iter", 20)


@pytest.mark.usefixtures("tiny_detector")
def test_resume_after_a_kill_keeps_the_plan(
    make_config: Callable[..., Config], machine: Callable[..., Machine], tmp_path: Path
) -> None:
    overrides = ("train.max_iter=60", "train.warmup_iters=6", "eval.period=15", "train.checkpoint_period=6",
                 "train.time=1m")  # fmt: skip
    config = make_config(*overrides)
    clock = machine(step_s=2.0)
    whole, _ = _run(config, tmp_path / "whole", clock)
    clock.steps, clock.kill_at = 0, 15
    with pytest.raises(Killed):
        _run(config, tmp_path / "killed", clock)
    saved = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert 5 < saved["iteration"] < 15 and saved["plan"]["fitted"] and saved["plan"]["max_iter"] < 60
    clock.kill_at = 0
    resumed = train_from_config(config, out_dir=tmp_path / "killed", resume=True, progress=False)
    assert resumed.iterations == whole.iterations == saved["plan"]["max_iter"]
    assert _lrs(tmp_path / "killed") == _lrs(tmp_path / "whole")  # the same LR at every step
    final = load_checkpoint(resumed.last_checkpoint)["plan"]
    assert final["used_s"] <= 60.0 and final["refits"] == saved["plan"]["refits"]
