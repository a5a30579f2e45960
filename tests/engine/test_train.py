"""A full tiny run on CPU: the files it writes, repeatability, exact resume, checkpoint fallback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from detforge.config import Config, load_config
from detforge.engine import TrainResult, train_from_config
from detforge.engine import checkpoint as checkpoint_module
from detforge.engine.logs import read_metrics
from detforge.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.timeout(300)


def _losses(out_dir: Path) -> dict[int, dict[str, float]]:
    """Training loss terms by iteration from metrics.jsonl (last occurrence wins)."""
    return {
        e["iteration"]: {k: v for k, v in e.items() if k.startswith("loss")}
        for e in read_metrics(out_dir)
        if e["event"] == "train"
    }


@pytest.fixture(scope="module")
def straight(
    tmp_path_factory: pytest.TempPathFactory, tiny_setup: tuple[Callable[..., Path], Callable[..., Config]]
) -> tuple[Config, TrainResult]:
    """One uninterrupted 6-iteration run (evaluations at 3 and 6, last.pt every iteration), shared below."""
    write_tiny_coco, tiny_config = tiny_setup
    root = tmp_path_factory.mktemp("straight")
    config = tiny_config(write_tiny_coco(root / "data"), "train.checkpoint_period=1")
    return config, train_from_config(config, out_dir=root / "run", progress=False)


def test_run_writes_every_output(straight: tuple[Config, TrainResult]) -> None:
    config, result = straight
    out = result.out_dir
    assert result.iterations == 6 and result.stop_reason == "max_iter"
    assert result.best_checkpoint == out / "checkpoints" / "best.pt" and result.best_checkpoint.exists()
    assert result.last_checkpoint == out / "checkpoints" / "last.pt" and result.last_checkpoint.exists()
    assert (out / "checkpoints" / "last.prev.pt").exists()
    assert not list((out / "checkpoints").glob(".*")), "no temp files left behind"
    assert load_config(out / "config.yaml") == config
    assert json.loads((out / "result.json").read_text())["iterations"] == 6
    events = read_metrics(out)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop" and kinds.count("train") == 6
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["iteration"] for e in evals] == [3, 6]
    for e in evals:  # validation loss AND COCO metrics at every evaluation
        assert e["val_loss"] > 0 and e["val_loss_classifier"] > 0
        assert 0.0 <= e["ap"] <= 1.0 and 0.0 <= e["ap50"] <= 1.0
        assert set(e["per_class_ap"]) == {"a", "b"}
    assert result.final_metrics is not None and result.final_metrics.iteration == 6
    assert result.best_iteration in (3, 6) and result.best_metric is not None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(out / "tb"))
    tb.Reload()
    tags = set(tb.Tags()["scalars"])
    assert {"train/loss", "train/lr", "eval/val_loss", "eval/ap", "eval/ap50"} <= tags
    assert [e.step for e in tb.Scalars("eval/ap")] == [3, 6]
    # metrics.jsonl lines are complete JSON objects, one per line
    assert all(line.startswith("{") and line.endswith("}") for line in (out / "metrics.jsonl").read_text().splitlines())


def test_model_artifact_loads_and_predicts(straight: tuple[Config, TrainResult]) -> None:
    from detforge.models.artifact import load_model

    _, result = straight
    detector, spec = load_model(result.model_path)
    assert spec.class_names == ("a", "b") and spec.category_ids == (1, 2)
    assert (spec.min_size, spec.max_size) == (64, 64)
    assert spec.extra["best_iteration"] == result.best_iteration
    best = torch.load(result.best_checkpoint, weights_only=True)  # type: ignore[arg-type]
    for name, tensor in detector.model.state_dict().items():
        assert torch.equal(tensor, best["model"][f"model.{name}"]), name
    (detections,) = detector.predict([torch.rand(3, 64, 64)])
    assert detections.boxes.shape[1] == 4


def test_same_seed_same_losses_and_exact_resume(
    straight: tuple[Config, TrainResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, reference = straight
    out = tmp_path / "run"
    real_save = checkpoint_module.save_last

    def save_then_die_at_3(state: dict, folder: Path) -> Path:  # type: ignore[type-arg]
        path = real_save(state, folder)
        if state["iteration"] == 3:
            raise KeyboardInterrupt("simulated kill after the checkpoint of iteration 3")
        return path

    monkeypatch.setattr("detforge.engine.callbacks.save_last", save_then_die_at_3)
    with pytest.raises(KeyboardInterrupt):
        train_from_config(config, out_dir=out, progress=False)
    monkeypatch.undo()
    first = _losses(out)
    assert first == {i: _losses(reference.out_dir)[i] for i in (1, 2, 3)}  # same seed, same data: same losses

    with pytest.raises(ConfigError, match="already holds a training run"):
        train_from_config(config, out_dir=out, progress=False)
    result = train_from_config(config, out_dir=out, resume=True, progress=False)
    assert result.iterations == 6
    assert _losses(out) == _losses(reference.out_dir)  # iterations 4-6 equal the uninterrupted run exactly
    assert result.best_metric == reference.best_metric
    evals = [e["val_loss"] for e in read_metrics(out) if e["event"] == "eval"]
    assert evals == [e["val_loss"] for e in read_metrics(reference.out_dir) if e["event"] == "eval"]


def test_resume_skips_a_damaged_last_checkpoint(
    straight: tuple[Config, TrainResult], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config, reference = straight
    out = tmp_path / "run"
    shutil.copytree(reference.out_dir, out)
    ckpt = out / "checkpoints"
    # last.pt is written every iteration, so last.prev.pt holds iteration 5. Simulate a kill during the
    # final save on a filesystem without atomic rename: last.pt truncated, a partial temp file left behind.
    data = (ckpt / "last.pt").read_bytes()
    (ckpt / "last.pt").write_bytes(data[: len(data) // 3])
    (ckpt / ".last.pt.new.12345.tmp").write_bytes(data[:1000])
    more = config.model_copy(update={"train": config.train.model_copy(update={"max_iter": 7})})
    with caplog.at_level("WARNING"):
        result = train_from_config(more, out_dir=out, resume=True, progress=False)
    assert "skipping damaged checkpoint" in caplog.text and "last.pt" in caplog.text
    assert "resuming from" in caplog.text and "last.prev.pt" in caplog.text
    assert result.iterations == 7
    losses = _losses(out)
    assert losses[6] == _losses(reference.out_dir)[6]  # iteration 6 redone from the iteration-5 checkpoint
    assert 7 in losses


def test_resume_without_any_valid_checkpoint(straight: tuple[Config, TrainResult], tmp_path: Path) -> None:
    config, _ = straight
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="no valid checkpoint to resume from"):
        train_from_config(config, out_dir=tmp_path / "run", resume=True, progress=False)


@pytest.mark.usefixtures("tiny_detector")
def test_resume_is_exact_with_loader_workers(
    make_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Augmentations are seeded per image position, so worker processes do not break exact resumes."""
    config = make_config("data.num_workers=2", "data.augment=strong", "train.checkpoint_period=1")
    reference = train_from_config(config, out_dir=tmp_path / "straight", progress=False)
    real_save = checkpoint_module.save_last

    def save_then_die_at_4(state: dict, folder: Path) -> Path:  # type: ignore[type-arg]
        path = real_save(state, folder)
        if state["iteration"] == 4:
            raise KeyboardInterrupt("simulated kill")
        return path

    monkeypatch.setattr("detforge.engine.callbacks.save_last", save_then_die_at_4)
    with pytest.raises(KeyboardInterrupt):
        train_from_config(config, out_dir=tmp_path / "resumed", progress=False)
    monkeypatch.setattr("detforge.engine.callbacks.save_last", real_save)
    train_from_config(config, out_dir=tmp_path / "resumed", resume=True, progress=False)
    assert _losses(tmp_path / "resumed") == _losses(reference.out_dir)


@pytest.mark.usefixtures("tiny_detector")
def test_a_fresh_run_clears_temp_files_a_killed_first_save_left(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    partial = checkpoints / ".last.pt.new.4242.tmp"  # what SIGKILL during the very first save leaves
    partial.write_bytes(b"PK\x03\x04 half a checkpoint")
    train_from_config(make_config("train.max_iter=2", "eval.period=2"), out_dir=tmp_path / "run", progress=False)
    assert not partial.exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.usefixtures("tiny_detector")
@pytest.mark.parametrize("resume", [False, True])
def test_a_run_clears_the_run_folders_partial_writes_and_keeps_other_files(
    make_config: Callable[..., Config], tmp_path: Path, resume: bool
) -> None:
    run = tmp_path / "run"
    if resume:
        train_from_config(make_config("train.max_iter=2", "eval.period=2"), out_dir=run, progress=False)
    run.mkdir(exist_ok=True)
    killed = [run / ".config.yaml.k3_x9qa1.tmp", run / ".model.pt.77.tmp"]  # what a kill mid-write leaves
    mine = [run / ".notes.tmp", run / "my.tmp", run / ".keep"]  # files that are not detforge's temp files
    for path in killed + mine:
        path.write_bytes(b"partial")
    config = make_config("train.max_iter=3" if resume else "train.max_iter=2", "eval.period=2")
    train_from_config(config, out_dir=run, resume=resume, progress=False)
    assert [p.exists() for p in killed] == [False, False]
    assert [p.read_bytes() for p in mine] == [b"partial"] * 3
