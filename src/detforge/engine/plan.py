"""The plan of a run in progress (how many iterations, where the schedule stands, how often to evaluate),
and fitting it to a time budget from measured costs. Plain values only: the plan is saved in checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Costs", "Fit", "RunPlan", "RunTimings", "count_between", "fit_to_budget", "now"]

EVAL_SHARE = 0.2
"""Periodic evaluations may take at most this share of the remaining budget; beyond it every second,
fourth, ... scheduled evaluation is kept."""
_EPS = 1e-9


def now() -> float:
    """Seconds on the clock that training durations and the time budget are measured with (monotonic)."""
    return time.monotonic()


@dataclass
class RunTimings:
    """Seconds spent on evaluations and checkpoint saves (measured by the hooks that do them)."""

    evals: int = 0
    eval_s: float = 0.0
    eval_total_s: float = 0.0
    checkpoints: int = 0
    checkpoint_s: float = 0.0
    checkpoint_total_s: float = 0.0

    def add_eval(self, seconds: float) -> None:
        self.evals, self.eval_s, self.eval_total_s = self.evals + 1, seconds, self.eval_total_s + seconds

    def add_checkpoint(self, seconds: float) -> None:
        self.checkpoints += 1
        self.checkpoint_s, self.checkpoint_total_s = seconds, self.checkpoint_total_s + seconds

    @property
    def overhead_s(self) -> float:
        """All seconds spent evaluating and saving so far in this session."""
        return self.eval_total_s + self.checkpoint_total_s


@dataclass
class RunPlan:
    """Where a run is going. The LR schedule, evaluations and checkpoints are defined on the schedule
    *position* in [0, `length`] (`length` = the config's max_iter): the position of iteration i is i
    until the plan is refitted. A refit at iteration i keeps position(i) and spreads the remaining
    positions evenly over the iterations up to the new `max_iter`, so the learning rate never jumps and
    the whole schedule (warmup, decay steps, cosine, evaluation points) ends at `max_iter`.

    `eval_stride` k keeps every k-th evaluation point; `fitted` says a time budget set `max_iter`;
    `budget_s` is the budget it was fitted to, `eval_s` and `checkpoint_s` the last measured costs of an
    evaluation and a save; the seconds used count earlier sessions of a resumed run.
    """

    length: int
    max_iter: int
    anchor_iteration: int = 0
    anchor_position: float = 0.0
    before_anchor: float = -1.0
    eval_stride: int = 1
    fitted: bool = False
    refits: int = 0
    budget_s: float | None = None
    eval_s: float | None = None
    checkpoint_s: float = 0.0
    used_before_s: float = 0.0
    session_start: float | None = None

    @classmethod
    def start(cls, max_iter: int) -> RunPlan:
        """The plan of a fresh run: `max_iter` iterations, positions = iterations."""
        return cls(length=max_iter, max_iter=max_iter)

    @property
    def rescaled(self) -> bool:
        """Whether positions and iterations differ (a refit changed the run's length)."""
        return self.max_iter - self.anchor_iteration != self.length - self.anchor_position

    def position(self, iteration: int) -> float:
        """The schedule position after `iteration` optimizer steps (0..length), for iterations from the one
        before the anchor on."""
        if iteration == self.anchor_iteration - 1:
            return self.before_anchor
        if not self.rescaled:
            return self.anchor_position + (iteration - self.anchor_iteration)
        if iteration >= self.max_iter:
            return float(self.length)
        done = (iteration - self.anchor_iteration) / (self.max_iter - self.anchor_iteration)
        return self.anchor_position + (self.length - self.anchor_position) * done

    def iteration_at(self, position: float) -> int:
        """The first iteration whose position is at least `position` (for positions after the anchor)."""
        if not self.rescaled:
            return self.anchor_iteration + math.ceil(position - self.anchor_position - _EPS)
        rate = (self.length - self.anchor_position) / (self.max_iter - self.anchor_iteration)
        return min(self.max_iter, self.anchor_iteration + math.ceil((position - self.anchor_position) / rate - _EPS))

    def due(self, iteration: int, period: float) -> bool:
        """Whether the step that ended at `iteration` passed a multiple of `period` positions (with positions =
        iterations: `iteration % period == 0`)."""
        if iteration <= 0:
            return False
        before = math.floor(self.position(iteration - 1) / period + _EPS)
        return math.floor(self.position(iteration) / period + _EPS) > before

    def refit(self, iteration: int, max_iter: int, eval_stride: int) -> None:
        """End the run at `max_iter` instead, keeping the position of `iteration` (the LR is continuous)."""
        if max_iter <= iteration:
            raise ValueError(f"a plan must end after iteration {iteration}, got max_iter={max_iter}")
        self.before_anchor, self.anchor_position = self.position(iteration - 1), self.position(iteration)
        self.anchor_iteration = iteration
        self.max_iter, self.eval_stride = max_iter, eval_stride
        self.fitted = True
        self.refits += 1

    def elapsed_s(self) -> float:
        """Seconds the run has used: earlier sessions (up to their last checkpoint) plus this session."""
        return self.used_before_s + (0.0 if self.session_start is None else now() - self.session_start)

    def state_dict(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "max_iter": self.max_iter,
            "anchor_iteration": self.anchor_iteration,
            "anchor_position": self.anchor_position,
            "before_anchor": self.before_anchor,
            "eval_stride": self.eval_stride,
            "fitted": self.fitted,
            "refits": self.refits,
            "budget_s": self.budget_s,
            "eval_s": self.eval_s,
            "checkpoint_s": self.checkpoint_s,
            "used_s": self.elapsed_s(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.length, self.max_iter = int(state["length"]), int(state["max_iter"])
        self.anchor_iteration, self.anchor_position = int(state["anchor_iteration"]), float(state["anchor_position"])
        self.before_anchor = float(state["before_anchor"])
        self.eval_stride, self.fitted = int(state["eval_stride"]), bool(state["fitted"])
        self.refits = int(state["refits"])
        self.budget_s = None if state["budget_s"] is None else float(state["budget_s"])
        self.eval_s = None if state["eval_s"] is None else float(state["eval_s"])
        self.checkpoint_s = float(state["checkpoint_s"])
        self.used_before_s, self.session_start = float(state["used_s"]), None


@dataclass(frozen=True)
class Costs:
    """Measured seconds: one iteration (loop included, evaluation and saving excluded), one evaluation
    (0 when the run does not evaluate), one checkpoint save."""

    iteration_s: float
    eval_s: float
    checkpoint_s: float


@dataclass(frozen=True)
class Fit:
    """A plan that fits the remaining time: its end, its evaluation stride, the periodic evaluations and
    saves left before the end (the final evaluation and save come on top), and the seconds it needs."""

    max_iter: int
    eval_stride: int
    evals: int
    saves: int
    needed_s: float


def count_between(start: float, end: float, period: float) -> int:
    """Multiples of `period` strictly between positions `start` and `end`."""
    first = math.floor(start / period + _EPS) + 1
    last = math.ceil(end / period - _EPS) - 1
    return max(0, last - first + 1)


def fit_to_budget(
    plan: RunPlan,
    iteration: int,
    remaining_s: float,
    costs: Costs,
    *,
    eval_period: int,
    evaluates: bool,
    checkpoint_period: int | None,
    cap: int | None,
) -> Fit:
    """The longest end for `plan` after `iteration` whose iterations, periodic evaluations (when
    `evaluates`: every `eval_period` positions times the stride), saves (every `checkpoint_period`
    positions; None = every `eval_period` times the stride) and final evaluation and save take at most
    `remaining_s` at `costs` (points due at `iteration` itself count: the fit runs before its evaluation
    and save); never past `cap`. Evaluations are thinned (stride 1, 2, 4, ...) until the
    periodic ones take at most EVAL_SHARE of `remaining_s` (never fewer than the plan's stride: a refit
    does not bring back evaluation points). `max_iter <= iteration`: nothing more fits.
    """
    position, end = plan.position(iteration), plan.length

    def left(period: int) -> int:  # points after `iteration`, and the one due at it (its hooks run after the fit)
        return count_between(position, end, period) + plan.due(iteration, period)

    stride, evals = plan.eval_stride, 0
    while evaluates:
        evals = left(eval_period * stride)
        if evals == 0 or evals * costs.eval_s <= EVAL_SHARE * remaining_s:
            break
        stride *= 2
    saves = left(checkpoint_period or eval_period * stride)
    fixed = (evals + evaluates) * costs.eval_s + (saves + 1) * costs.checkpoint_s
    steps = max(0, math.floor((remaining_s - fixed) / max(costs.iteration_s, 1e-9)))
    max_iter = iteration + steps if cap is None else min(iteration + steps, cap)
    return Fit(max_iter, stride, evals, saves, (max_iter - iteration) * costs.iteration_s + fixed)
