"""The hooks around the loop: progress and loss logs, evaluation with best model and early stopping,
periodic checkpoints (the time budget's hook is in `budget`). File-writing hooks act on rank 0 only.
Periods are counted in the run plan's schedule positions: iterations, until a time budget refits the plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from detforge.engine import plan as run_plan
from detforge.engine.checkpoint import atomic_torch_save, save_last
from detforge.engine.distributed import mean_of
from detforge.engine.loop import Hook, Trainer
from detforge.engine.result import EvalRecord

__all__ = ["BEST", "CheckpointHook", "EvalHook", "LogHook", "checkpoint_period", "eval_period"]

BEST = "best.pt"
BEST_FORMAT = "detforge-best-weights"


class LogHook(Hook):
    """Progress bar every step; a "train" event (losses averaged over ranks, lr, seconds per iteration,
    ETA) every `train.log_period` iterations and at the last one."""

    def __init__(self) -> None:
        self._last_time = 0.0
        self._last_iter = 0

    def before_train(self, trainer: Trainer) -> None:
        self._last_time, self._last_iter = run_plan.now(), trainer.state.iteration

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        it, cfg, max_iter = trainer.state.iteration, trainer.config.train, trainer.plan.max_iter
        trainer.log.progress(it, losses)
        if it % cfg.log_period and it != max_iter:
            return
        losses = mean_of(losses, trainer.dist, trainer.device)
        now = run_plan.now()
        per_iter = (now - self._last_time) / max(it - self._last_iter, 1)
        self._last_time, self._last_iter = now, it
        lr = trainer.optimizer.param_groups[0]["lr"]
        trainer.log.event(
            "train",
            it,
            **losses,
            lr=lr,
            s_per_iter=round(per_iter, 4),
            eta_s=round(per_iter * (max_iter - it), 1),
            epoch=trainer.sampler.epoch,
        )


def eval_period(trainer: Trainer) -> int:
    """Schedule positions between evaluations: eval.period times the plan's stride."""
    return trainer.config.eval.period * trainer.plan.eval_stride


def checkpoint_period(trainer: Trainer) -> int:
    """Schedule positions between saves of last.pt: train.checkpoint_period, else the evaluation period."""
    return trainer.config.train.checkpoint_period or eval_period(trainer)


class EvalHook(Hook):
    """Every `eval.period` iterations (in schedule positions: `eval_period`) and at the end: validation
    loss + COCO metrics ("eval" event), `best.pt` when the selection metric improves by more than
    `eval.min_delta`, early stopping after `eval.patience` evaluations without improvement. Rank 0 only;
    `evaluate(trainer)` runs one pass."""

    def __init__(self, evaluate: Callable[[Trainer], EvalRecord], checkpoint_dir: Path) -> None:
        self.evaluate = evaluate
        self.best_path = checkpoint_dir / BEST

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.dist.is_main and trainer.plan.due(trainer.state.iteration, eval_period(trainer)):
            self._evaluate(trainer)

    def after_train(self, trainer: Trainer) -> None:
        state = trainer.state
        done = state.last_eval is not None and state.last_eval.iteration == state.iteration
        if trainer.dist.is_main and not done and state.stop_reason != "non_finite_loss":
            self._evaluate(trainer)

    def _evaluate(self, trainer: Trainer) -> None:
        cfg, state = trainer.config.eval, trainer.state
        started = run_plan.now()
        record = self.evaluate(trainer)
        state.last_eval = record
        value = record.value(cfg.metric)
        lower_better = cfg.metric == "val_loss"
        improved = state.best_metric is None or (
            value < state.best_metric - cfg.min_delta if lower_better else value > state.best_metric + cfg.min_delta
        )
        if improved:
            state.best_metric, state.best_iteration, state.bad_evals = value, state.iteration, 0
            atomic_torch_save(
                {
                    "format": BEST_FORMAT,
                    "iteration": state.iteration,
                    "metric": cfg.metric,
                    "value": value,
                    "model": trainer.eval_model.state_dict(),
                },
                self.best_path,
            )
        else:
            state.bad_evals += 1
        trainer.timings.add_eval(run_plan.now() - started)
        trainer.log.event(
            "eval",
            state.iteration,
            val_loss=record.val_loss,
            **{f"val_{k}": v for k, v in record.val_losses.items()},
            **record.metrics,
            per_class_ap=record.per_class_ap,
            best=improved,
            best_metric=state.best_metric,
            eval_s=round(trainer.timings.eval_s, 2),
        )
        trainer.log.info(
            "iteration %d: val_loss %.4f, AP %.4f, AP50 %.4f%s",
            state.iteration,
            record.val_loss,
            record.metrics.get("ap", float("nan")),
            record.metrics.get("ap50", float("nan")),
            " (best)" if improved else "",
        )
        patience = cfg.patience
        if patience is not None and state.bad_evals >= patience and state.stop_reason is None:
            state.stop_reason = "early_stopping"
            trainer.log.info(
                "early stopping: %s has not improved for %d evaluations (best %.4f at iteration %s)",
                cfg.metric,
                state.bad_evals,
                state.best_metric,
                state.best_iteration,
            )


class CheckpointHook(Hook):
    """`last.pt` every `train.checkpoint_period` iterations (default: with the evaluations; schedule positions,
    see `checkpoint_period`) and at the end."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.folder = checkpoint_dir

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.plan.due(trainer.state.iteration, checkpoint_period(trainer)) and trainer.state.stop_reason is None:
            self.save(trainer)  # when stopping, after_train saves once the final evaluation is done

    def after_train(self, trainer: Trainer) -> None:
        if trainer.state.last_saved != trainer.state.iteration and trainer.state.stop_reason != "non_finite_loss":
            self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        started = run_plan.now()
        save_last(trainer.state_dict(), self.folder)
        trainer.state.last_saved = trainer.state.iteration
        trainer.timings.add_checkpoint(run_plan.now() - started)
