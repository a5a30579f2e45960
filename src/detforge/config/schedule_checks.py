"""Warnings about schedules that are valid but almost certainly not what the user meant."""

from __future__ import annotations

from detforge.config.schema import Config

__all__ = ["check_schedule"]

SGD_REFERENCE_LR = 0.02
"""The linear-scaling rule's reference: SGD at lr 0.02 for 16 images per step (Detectron2's recipe)."""
SGD_REFERENCE_BATCH = 16


def check_schedule(config: Config, *, num_train_images: int | None = None) -> list[str]:
    """Human-readable warnings about the schedule of `config` (an empty list when nothing looks wrong).

    Checks: multistep decay points at or beyond max_iter (the LR never decays), warmup as long as the run,
    evaluation or checkpoint periods longer than the run, early-stopping patience that can never trigger,
    an SGD learning rate far above the linear-scaling rule for the batch, an EMA horizon longer than the
    run, a `time_fit` without a budget, and (when `num_train_images` is given) a batch larger than the
    training set.
    """
    t, e = config.train, config.eval
    warnings: list[str] = []
    if t.scheduler == "multistep":
        late = [s for s in t.lr_steps if s >= t.max_iter]
        if late:
            what = (
                "never decays" if len(late) == len(t.lr_steps) else f"skips {len(late)} of its {len(t.lr_steps)} decays"
            )
            warnings.append(
                f"LR steps {list(t.lr_steps)} are beyond max_iter={t.max_iter}: the LR {what} — a common Detectron2 "
                "mistake when shortening MAX_ITER of a 3x schedule; set train.steps to points before max_iter "
                "(or leave it unset for 75% and 90% of max_iter)"
            )
    elif t.steps is not None:
        warnings.append(f"train.steps={list(t.steps)} is ignored with train.scheduler=cosine")
    if t.warmup_iters >= t.max_iter:
        warnings.append(
            f"warmup_iters={t.warmup_iters} is not shorter than max_iter={t.max_iter}: "
            "the run never reaches the full LR"
        )
    elif t.warmup_iters > t.max_iter // 2:
        warnings.append(f"warmup_iters={t.warmup_iters} takes more than half of max_iter={t.max_iter}")
    if e.period > t.max_iter:
        warnings.append(
            f"eval.period={e.period} is longer than max_iter={t.max_iter}: only the final evaluation runs, "
            "so early stopping and best-model selection have one point"
        )
    if t.checkpoint_period is not None and t.checkpoint_period > t.max_iter:
        warnings.append(
            f"train.checkpoint_period={t.checkpoint_period} is longer than max_iter={t.max_iter}: "
            "last.pt is written only at the end"
        )
    if e.patience is not None and e.patience * e.period >= t.max_iter:
        warnings.append(
            f"eval.patience={e.patience} evaluations x eval.period={e.period} covers max_iter={t.max_iter}: "
            "early stopping can never trigger"
        )
    if t.time is None and "time_fit" in t.model_fields_set and t.time_fit != "auto":
        warnings.append(f"train.time_fit={t.time_fit} is ignored without train.time (a time budget)")
    if t.optimizer == "sgd":
        rule = SGD_REFERENCE_LR * t.images_per_step / SGD_REFERENCE_BATCH
        if t.lr > 4 * rule:
            warnings.append(
                f"train.lr={t.lr:g} with {t.images_per_step} images per step is {t.lr / rule:.0f}x the linear-scaling "
                f"rule ({SGD_REFERENCE_LR} at {SGD_REFERENCE_BATCH} images -> {rule:g}); training may diverge "
                "(Detectron2's BASE_LR assumes IMS_PER_BATCH=16)"
            )
    elif t.lr > 1e-2:
        warnings.append(f"train.lr={t.lr:g} is very high for AdamW (fine-tuning usually uses 1e-4 or less)")
    if t.ema and 1.0 / (1.0 - t.ema_decay) > t.max_iter:
        warnings.append(
            f"train.ema_decay={t.ema_decay} averages over ~{1.0 / (1.0 - t.ema_decay):.0f} iterations, more than "
            f"max_iter={t.max_iter}: the EMA weights lag far behind; lower the decay"
        )
    if num_train_images is not None and t.batch_size > num_train_images:
        warnings.append(
            f"train.batch_size={t.batch_size} is larger than the training set ({num_train_images} images): "
            "every batch repeats images"
        )
    return warnings
