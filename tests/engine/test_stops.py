"""Ways a run ends early: a non-finite loss, the time budget, early stopping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from detforge.config import Config
from detforge.engine import EvalRecord, TrainingDiverged, train_from_config
from detforge.engine.checkpoint import load_checkpoint, non_finite_tensors
from detforge.engine.logs import read_metrics
from detforge.models.detector import Detector

pytestmark = pytest.mark.timeout(300)


@pytest.mark.usefixtures("tiny_detector")
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    make_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Detector.forward_loss
    calls = 0

    def poisoned(self: Detector, images, targets):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        losses = real(self, images, targets)
        if calls == 3:
            losses["loss_box_reg"] = losses["loss_box_reg"] * float("nan")
        return losses

    monkeypatch.setattr(Detector, "forward_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        train_from_config(make_config("eval.period=2"), out_dir=out, progress=False)
    message = str(info.value)
    assert "the loss is not finite at iteration 3" in message
    for term in ("loss_classifier=", "loss_box_reg=nan", "loss_objectness=", "loss_rpn_box_reg="):
        assert term in message
    assert f"the last good checkpoint is {out / 'checkpoints' / 'last.pt'}" in message
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last["iteration"] == 2 and non_finite_tensors(last["model"]) == []
    assert not (out / "checkpoints" / "last.prev.pt").exists()  # nothing saved after iteration 2
    stop = read_metrics(out)[-1]
    assert stop["event"] == "stop" and stop["reason"] == "non_finite_loss" and stop["iteration"] == 2
    assert (out / "model.pt").exists()  # made from best.pt (iteration 2)


@pytest.mark.usefixtures("tiny_detector")
def test_time_budget_stops_cleanly_then_evaluates_and_saves(make_config: Callable[..., Config], tmp_path: Path) -> None:
    result = train_from_config(
        make_config("train.time=1s", "train.max_iter=500", "eval.period=500"), out_dir=tmp_path / "run", progress=False
    )
    assert result.stop_reason == "time_budget"
    assert 1 <= result.iterations < 500
    assert result.final_metrics is not None and result.final_metrics.iteration == result.iterations
    assert result.best_checkpoint is not None and result.model_path.exists()
    assert load_checkpoint(result.last_checkpoint)["iteration"] == result.iterations
    events = read_metrics(tmp_path / "run")
    assert [e["event"] for e in events[-2:]] == ["eval", "stop"] and events[-1]["reason"] == "time_budget"


def _fake_evaluations(values: list[float], metric: str) -> Callable[..., EvalRecord]:
    it: Iterator[float] = iter(values)

    def evaluate(model, batches, evaluator, *, iteration: int, device: torch.device) -> EvalRecord:  # type: ignore[no-untyped-def]
        value = next(it)
        metrics = {"ap": value if metric == "ap" else 0.0, "ap50": 0.0}
        return EvalRecord(iteration, value if metric == "val_loss" else 1.0, {"loss_x": 1.0}, metrics, {})

    return evaluate


@pytest.mark.usefixtures("tiny_detector")
@pytest.mark.parametrize(
    ("metric", "values"), [("ap", [0.1, 0.3, 0.2, 0.3, 0.9]), ("val_loss", [2.0, 1.0, 1.5, 1.0, 0.1])]
)
def test_early_stopping_on_the_chosen_metric(
    metric: str,
    values: list[float],
    make_config: Callable[..., Config],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("detforge.engine.train_job.run_evaluation", _fake_evaluations(values, metric))
    config = make_config(f"eval.metric={metric}", "eval.period=1", "eval.patience=2", "train.max_iter=10")
    result = train_from_config(config, out_dir=tmp_path / "run", progress=False)
    assert result.stop_reason == "early_stopping"
    assert result.iterations == 4  # best at 2, no improvement at 3 and 4 (an equal value is no improvement)
    assert (result.best_iteration, result.best_metric) == (2, values[1])
    best = torch.load(result.best_checkpoint, weights_only=True)  # type: ignore[arg-type]
    assert (best["iteration"], best["metric"], best["value"]) == (2, metric, values[1])
    evals = [e for e in read_metrics(tmp_path / "run") if e["event"] == "eval"]
    assert [e["best"] for e in evals] == [True, True, False, False]
    assert load_checkpoint(result.last_checkpoint)["state"]["bad_evals"] == 2
