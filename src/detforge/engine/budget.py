"""The time budget (`train.time`): measure what an iteration and an evaluation cost on this machine, fit
the run plan (iterations, LR schedule, evaluation points) to the budget, refit it when the speed changes,
and, as a last resort, stop before the budget is passed. Works from measured seconds only, so it is the
same for every model family."""

from __future__ import annotations

import torch

from detforge.config import TrainConfig, format_duration
from detforge.engine import plan as run_plan
from detforge.engine.callbacks import eval_period
from detforge.engine.loop import Hook, Trainer
from detforge.engine.plan import Costs, Fit, RunPlan, fit_to_budget

__all__ = ["CHECKS", "MARGIN", "SKIP_ITERS", "TimeBudgetHook"]

SKIP_ITERS = 2
"""Iterations at the start of each session that are not timed (lazy initialisation, loader start-up)."""
WINDOW_ITERS = 3
"""Iterations timed for the first fit (the later measurements span the iterations since the previous one)."""
CHECKS = (0.1, 0.25, 0.5, 0.75, 0.9)
"""Shares of the schedule where the speed since the previous measurement is taken again."""
REFIT_TOLERANCE = 0.1
"""A later measurement lengthens a fitted plan only when more than this share of the iterations left can be
added (it shortens it whenever the plan would pass the budget)."""
MARGIN = 0.03
"""Share of the budget left free for timing noise and the files written after the last save (model.pt)."""
PREDICT_SHARE = 0.6
"""Before the first evaluation is timed: evaluating an image is taken to cost this share of training on it."""

_KEEP, _REFIT, _STOP = 0, 1, 2


class TimeBudgetHook(Hook):
    """With `train.time`: after SKIP_ITERS iterations of a session, time WINDOW_ITERS (evaluation and
    checkpoint time excluded) and fit the plan to what is left of the budget (setup time and earlier
    sessions of a resumed run count); fit again after the first evaluation is timed and at each of CHECKS
    (shorter whenever the plan would pass the budget, longer by more than REFIT_TOLERANCE only); log each
    refit (a line and a "plan" event).
    Stops (reason "time_budget") when the next iteration plus the final evaluation and save would pass the
    budget. `start` is when the run started on the `plan.now` clock; `val_images` 0 = no evaluation.
    Decisions are taken on rank 0 and shared with every rank."""

    def __init__(self, start: float, *, val_images: int = 0) -> None:
        self.start = start
        self.val_images = val_images
        self._mark: tuple[int, float, float] | None = None
        self._skip_until = self._first_fit = 0
        self._checks: list[float] = []
        self._eval_seen = False
        self._budget_changed = False
        self._iteration_s: float | None = None

    def before_train(self, trainer: Trainer) -> None:
        plan, budget, it = trainer.plan, trainer.config.train.time, trainer.state.iteration
        plan.session_start = self.start
        if budget is None:
            return
        self._budget_changed = plan.budget_s is not None and plan.budget_s != budget
        plan.budget_s = budget
        self._skip_until = it + SKIP_ITERS
        self._first_fit = self._skip_until + WINDOW_ITERS
        self._checks = [f for f in CHECKS if f * plan.length > plan.position(it)]

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        budget, it, plan = trainer.config.train.time, trainer.state.iteration, trainer.plan
        if budget is None or trainer.state.stop_reason is not None:
            return
        if it == self._skip_until:
            self._set_mark(trainer)
        reason = None
        if it == self._first_fit:
            reason = "first measurement"
        evaluated = self.val_images > 0 and not self._eval_seen and plan.due(it - 1, eval_period(trainer))
        if evaluated and it - 1 > self._skip_until:
            self._eval_seen = True
            reason = reason or ("evaluation timed" if it > self._first_fit else None)
        while self._checks and plan.position(it) >= self._checks[0] * plan.length - 1e-9:
            share = self._checks.pop(0)
            reason = reason or (f"speed check at {share:.0%} of the schedule" if it > self._first_fit else None)
        if reason is not None and self._mark is not None and it > self._mark[0]:
            self._decide(trainer, reason)
        if trainer.dist.is_main and trainer.state.stop_reason is None:
            self._stop_if_over(trainer, budget)

    def _set_mark(self, trainer: Trainer) -> None:
        self._mark = (trainer.state.iteration, run_plan.now(), trainer.timings.overhead_s)

    def _decide(self, trainer: Trainer, reason: str) -> None:
        """Fit on rank 0, then every rank applies the same decision."""
        it, plan = trainer.state.iteration, trainer.plan
        decision: list[float] = [_KEEP, plan.max_iter, plan.eval_stride]
        measured: tuple[Costs, bool, Fit] | None = None
        if trainer.dist.is_main:
            costs, estimated = self._costs(trainer)
            fit = self._fit(trainer, costs)
            decision, measured = [self._action(trainer, fit), fit.max_iter, fit.eval_stride], (costs, estimated, fit)
        action, max_iter, stride = _shared(decision, trainer)
        self._set_mark(trainer)
        if action == _REFIT:
            previous, self._budget_changed = plan.max_iter, False
            plan.refit(it, max_iter, stride)
            trainer.log.set_total(plan.max_iter)
            if measured is not None:
                self._log_refit(trainer, reason, previous, *measured)
        elif action == _STOP:
            trainer.state.stop_reason = "time_budget"
            if measured is not None:
                trainer.log.info(
                    "time budget %s: at %.2f s per iteration no further iteration fits after iteration %d "
                    "(%s used); evaluating and saving",
                    format_duration(plan.budget_s or 0.0), measured[0].iteration_s, it,
                    format_duration(plan.elapsed_s()),
                )  # fmt: skip

    def _costs(self, trainer: Trainer) -> tuple[Costs, bool]:
        """Measured costs since the mark; whether the evaluation cost is an estimate (none timed yet)."""
        assert self._mark is not None
        it0, t0, overhead0 = self._mark
        spent = (run_plan.now() - t0) - (trainer.timings.overhead_s - overhead0)
        self._iteration_s = iteration_s = max(spent, 0.0) / (trainer.state.iteration - it0)
        timings, plan, estimated = trainer.timings, trainer.plan, False
        if timings.evals:
            plan.eval_s = timings.eval_s
        if timings.checkpoints:
            plan.checkpoint_s = timings.checkpoint_s
        eval_s = plan.eval_s  # measured in this session, or in an earlier one of a resumed run
        if eval_s is None:
            cfg = trainer.config.train
            images_per_step = max(cfg.images_per_step // trainer.dist.world_size, 1)
            eval_s, estimated = iteration_s * PREDICT_SHARE * self.val_images / images_per_step, True
        return Costs(iteration_s, eval_s if self.val_images else 0.0, plan.checkpoint_s), estimated

    def _fit(self, trainer: Trainer, costs: Costs) -> Fit:
        plan, cfg = trainer.plan, trainer.config
        remaining = (plan.budget_s or 0.0) * (1.0 - MARGIN) - plan.elapsed_s()
        return fit_to_budget(
            plan,
            trainer.state.iteration,
            remaining,
            costs,
            eval_period=cfg.eval.period,
            evaluates=self.val_images > 0,
            checkpoint_period=cfg.train.checkpoint_period,
            cap=None if cfg.train.time_fills_run else cfg.train.max_iter,
        )

    def _action(self, trainer: Trainer, fit: Fit) -> int:
        plan, it = trainer.plan, trainer.state.iteration
        if fit.max_iter <= it:
            return _STOP
        if fit.max_iter == plan.max_iter and fit.eval_stride == plan.eval_stride:
            return _KEEP
        if fit.max_iter < plan.max_iter or fit.eval_stride != plan.eval_stride or not plan.fitted:
            return _REFIT  # the plan would pass the budget, or was never fitted
        grows = fit.max_iter - plan.max_iter > REFIT_TOLERANCE * (plan.max_iter - it)
        return _REFIT if grows or self._budget_changed else _KEEP

    def _stop_if_over(self, trainer: Trainer, budget: float) -> None:
        """The last resort when the machine slowed down after the last fit."""
        timings, plan = trainer.timings, trainer.plan
        reserve = (timings.eval_s if self.val_images else 0.0) + timings.checkpoint_s + (self._iteration_s or 0.0)
        elapsed = plan.elapsed_s()
        if elapsed + reserve >= budget:
            trainer.state.stop_reason = "time_budget"
            trainer.log.info(
                "time budget %s reached after %s at iteration %d of %d (the machine slowed down after the "
                "schedule was fitted): evaluating and saving",
                format_duration(budget), format_duration(elapsed), trainer.state.iteration, plan.max_iter,
            )  # fmt: skip

    def _log_refit(self, trainer: Trainer, reason: str, previous: int, costs: Costs, estimated: bool, fit: Fit) -> None:
        plan, it = trainer.plan, trainer.state.iteration
        elapsed = plan.elapsed_s()
        evals = fit.evals + (self.val_images > 0)
        eval_text = (
            "no evaluation"
            if not self.val_images
            else f"{costs.eval_s:.1f} s per evaluation ({'estimated' if estimated else 'measured'})"
        )
        trainer.log.info(
            "time budget %s (%s): %.2f s per iteration measured, %s; the schedule now ends at iteration %d "
            "instead of %d (%s; %d evaluations left%s), expected to end after %s",
            format_duration(plan.budget_s or 0.0), reason, costs.iteration_s, eval_text, plan.max_iter, previous,
            _schedule_text(trainer.config.train, plan, it), evals,
            f", every {fit.eval_stride} evaluation points" if fit.eval_stride > 1 else "",
            format_duration(elapsed + fit.needed_s),
        )  # fmt: skip
        trainer.log.event(
            "plan", it, reason=reason, max_iter=plan.max_iter, previous_max_iter=previous,
            position=round(plan.position(it), 3), iteration_s=round(costs.iteration_s, 4),
            eval_s=round(costs.eval_s, 3), eval_estimated=estimated, checkpoint_s=round(costs.checkpoint_s, 3),
            evals_left=evals, eval_stride=fit.eval_stride, budget_s=plan.budget_s, elapsed_s=round(elapsed, 2),
            expected_end_s=round(elapsed + fit.needed_s, 2),
        )  # fmt: skip


def _schedule_text(cfg: TrainConfig, plan: RunPlan, iteration: int) -> str:
    """Where the rest of the LR schedule now falls, in iterations."""
    position = plan.position(iteration)
    parts = []
    if position < cfg.warmup_iters:
        parts.append(f"warmup until iteration {plan.iteration_at(cfg.warmup_iters)}")
    if cfg.scheduler == "cosine":
        parts.append(f"cosine decay to iteration {plan.max_iter}")
    else:
        steps = [plan.iteration_at(s) for s in cfg.lr_steps if s > position]
        parts.append("LR decays at iterations " + ", ".join(map(str, steps)) if steps else "LR fully decayed")
    return "; ".join(parts)


def _shared(values: list[float], trainer: Trainer) -> tuple[int, int, int]:
    """Rank 0's `values` on every rank."""
    if trainer.dist.distributed:
        t = torch.tensor(values, dtype=torch.float64, device=trainer.device)
        torch.distributed.broadcast(t, src=0)
        values = t.tolist()
    return int(values[0]), int(values[1]), int(values[2])
