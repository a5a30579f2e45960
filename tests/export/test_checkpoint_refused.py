"""predict / eval / export / benchmark on a run's training checkpoint say to use the run's model.pt.

Found by a user who pointed `detforge export` at `runs/x/checkpoints/best.pt` (the best weights of the run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import detforge
from detforge.api._predictor import refuse_training_checkpoint
from detforge.cli import main
from detforge.engine.callbacks import BEST_FORMAT
from detforge.engine.checkpoint import CHECKPOINT_FORMAT, atomic_torch_save
from detforge.errors import CheckpointError


@pytest.fixture()
def run(tmp_path: Path, tiny_artifact: Path) -> Path:
    """A run folder as `detforge train` leaves it: model.pt and checkpoints/best.pt, last.pt."""
    folder = tmp_path / "runs" / "x"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_artifact, folder / "model.pt")
    weights = {"w": torch.zeros(2)}
    best = {"format": BEST_FORMAT, "iteration": 10, "metric": "ap", "value": 0.5, "model": weights}
    atomic_torch_save(best, folder / "checkpoints" / "best.pt")
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "version": 1, "model": weights}, folder / "checkpoints" / "last.pt")
    return folder


def _coco(folder: Path) -> Path:
    """A one-image COCO dataset (eval reads its data before the model)."""
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(folder / "images" / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "cat"}],
    }
    (folder / "test.json").write_text(json.dumps(coco))  # subset "test", what eval reads by default
    return folder / "test.json"


def test_api_verbs_name_the_runs_model_file(run: Path, tmp_path: Path) -> None:
    best = run / "checkpoints" / "best.pt"
    expected = rf"checkpoints/best.pt is a training checkpoint .*use the run's model file {run / 'model.pt'}$"
    with pytest.raises(CheckpointError, match=expected):
        detforge.predict(best, tmp_path, out=tmp_path / "out")
    with pytest.raises(CheckpointError, match=expected):
        detforge.evaluate(best, _coco(tmp_path / "data"), split=None)
    with pytest.raises(CheckpointError, match=expected):
        detforge.export_model(best, out=tmp_path / "m.onnx")
    with pytest.raises(CheckpointError, match=expected):
        detforge.benchmark(best)
    with pytest.raises(CheckpointError, match=r"last.pt is a training checkpoint"):
        refuse_training_checkpoint(run / "checkpoints" / "last.pt")
    refuse_training_checkpoint(run / "model.pt")  # the model itself passes
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "out").exists()


def test_a_run_without_model_file_says_so(run: Path) -> None:
    (run / "model.pt").unlink()
    with pytest.raises(CheckpointError, match=rf"the run {run} has no model.pt yet: `detforge train` writes it"):
        refuse_training_checkpoint(run / "checkpoints" / "best.pt")


@pytest.mark.parametrize("verb", ["predict", "eval", "export"])
def test_cli_prints_one_line_naming_model_pt(
    run: Path, tmp_path: Path, verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    best = str(run / "checkpoints" / "best.pt")
    data = str(_coco(tmp_path / "data"))
    argv = {"predict": [best, str(tmp_path)], "eval": [best, data], "export": [best]}[verb]
    assert main([verb, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert f"is a training checkpoint (to resume training), not a model file; use the run's model file {run}" in err
