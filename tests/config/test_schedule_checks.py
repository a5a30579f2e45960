"""check_schedule: valid but suspicious schedules produce warnings that say what happens and why."""

from __future__ import annotations

from detforge.config import check_schedule, load_config


def test_a_sane_schedule_has_no_warnings() -> None:
    assert check_schedule(load_config(None, ["train.max_iter=1000", "eval.period=100"]), num_train_images=50) == []


def test_detectron2_3x_steps_with_a_short_run() -> None:
    config = load_config(None, ["train.max_iter=1000", "train.steps=[210000,250000]", "eval.period=100"])
    (warning,) = check_schedule(config)
    assert warning.startswith("LR steps [210000, 250000] are beyond max_iter=1000: the LR never decays")
    assert "a common Detectron2 mistake when shortening MAX_ITER of a 3x schedule" in warning
    partly = check_schedule(load_config(None, ["train.max_iter=1000", "train.steps=[800,2000]", "eval.period=100"]))
    assert "skips 1 of its 2 decays" in partly[0]


def test_each_rule() -> None:
    config = load_config(
        None,
        [
            "train.max_iter=50",
            "train.warmup_iters=80",
            "eval.period=100",
            "train.checkpoint_period=60",
            "eval.patience=3",
            "train.lr=0.02",
            "train.batch_size=8",
            "train.ema=true",
            "train.ema_decay=0.999",
            "train.scheduler=cosine",
            "train.steps=[10]",
        ],
    )
    text = "\n".join(check_schedule(config, num_train_images=5))
    assert "train.steps=[10] is ignored with train.scheduler=cosine" in text
    assert "warmup_iters=80 is not shorter than max_iter=50" in text
    assert "eval.period=100 is longer than max_iter=50" in text
    assert "train.checkpoint_period=60 is longer than max_iter=50" in text
    assert "early stopping can never trigger" in text
    assert "averages over ~1000 iterations" in text
    assert "train.batch_size=8 is larger than the training set (5 images)" in text
    high = check_schedule(load_config(None, ["train.lr=0.02", "train.batch_size=2", "eval.period=100"]))
    assert any("8x the linear-scaling rule" in w and "-> 0.0025" in w for w in high)
    adamw = check_schedule(load_config(None, ["train.optimizer=adamw", "train.lr=0.05", "eval.period=100"]))
    assert any("very high for AdamW" in w for w in adamw)


def test_a_time_fit_without_a_budget_is_named() -> None:
    config = load_config(None, ["train.max_iter=1000", "eval.period=100", "train.time_fit=fill"])
    assert check_schedule(config) == ["train.time_fit=fill is ignored without train.time (a time budget)"]
    with_budget = load_config(None, ["train.max_iter=1000", "eval.period=100", "train.time_fit=fill", "train.time=5m"])
    assert check_schedule(with_budget) == []
