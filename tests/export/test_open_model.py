"""One opener for every model file (`open_predictor`): `detforge predict` and the service run an artifact, an
`.onnx` file and a TorchScript `.ts` file on the same backend, with the file's classes, ids and threshold."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.api._predictor import make_predictor
from detforge.errors import CheckpointError, ConfigError
from detforge.export import ExportReport, TorchScriptDetector, artifact_metadata, export_torchscript
from detforge.export.exported_graph import ExportedGraph
from detforge.export.open_model import open_predictor
from detforge.models.artifact import load_model
from detforge.models.detector import Detector
from detforge.serving import ServeSettings, create_app, load_served_model

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def tiny_ts(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TorchScript export of `tiny_artifact` (as `export_model` writes it, without its parity check)."""
    detector, spec = load_model(tiny_artifact)
    out = tmp_path_factory.mktemp("ts") / "model.ts"
    return export_torchscript(detector, artifact_metadata(detector, spec, "torchscript"), out)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_service_and_the_api_run_each_kind_of_file_on_its_backend(
    tiny_artifact: Path, tiny_onnx: ExportReport, tiny_ts: Path
) -> None:
    kinds = {tiny_artifact: Detector, tiny_onnx.path: ExportedGraph, tiny_ts: TorchScriptDetector}
    boxes = {}
    for path, kind in kinds.items():
        served = load_served_model(path, batch_size=2, device="cpu")
        assert isinstance(served.predictor.model, kind), path
        assert served.predictor.class_names == ("cat", "dog")
        assert served.predictor.category_ids == (3, 7)
        assert served.score_threshold == pytest.approx(0.25)  # the calibrated threshold, from spec or metadata
        assert served.input_size == (64, 96)
        with TestClient(create_app(served, settings=ServeSettings())) as client:
            response = client.post(
                "/v1/detect?score_threshold=0", content=_png(), headers={"content-type": "image/png"}
            )
        assert response.status_code == 200, response.text
        boxes[kind] = np.array(response.json()["boxes"]).reshape(-1, 4)

        api = make_predictor(path, device="cpu")  # `detforge predict` opens the file the same way
        assert type(api.model) is type(served.predictor.model), path
        assert (api.class_names, api.category_ids) == (served.predictor.class_names, served.predictor.category_ids)
        assert api.score_threshold == pytest.approx(served.score_threshold)
    assert len(boxes[Detector]) > 0
    for kind in (ExportedGraph, TorchScriptDetector):  # same detections as PyTorch, within parity tolerance
        assert boxes[kind].shape == boxes[Detector].shape, kind
        assert np.abs(boxes[kind] - boxes[Detector]).max() < 0.05, kind


def test_files_that_are_not_what_their_name_says_are_refused_by_api_and_service(
    tiny_artifact: Path, tiny_ts: Path, tmp_path: Path
) -> None:
    renamed_ts = shutil.copy(tiny_ts, tmp_path / "scripted.pt")
    renamed_pt = shutil.copy(tiny_artifact, tmp_path / "model.ts")
    for path, what in ((renamed_ts, "a TorchScript archive"), (renamed_pt, "a detforge model.pt renamed .ts")):
        for open_file in (make_predictor, load_served_model):
            with pytest.raises(CheckpointError, match=f"{path.name} is {what}"):
                open_file(path)
    with pytest.raises(CheckpointError, match=r"absent\.onnx is not a file"):
        open_predictor(tmp_path / "absent.onnx")
    with pytest.raises(ConfigError, match=r"only an \.onnx model has a choice of runtime"):
        open_predictor(tiny_artifact, runtime="onnxruntime")


def test_the_service_names_the_runs_model_file_for_a_training_checkpoint(tiny_artifact: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_artifact, run / "model.pt")
    torch.save({"format": "detforge-train-checkpoint", "iteration": 3}, run / "checkpoints" / "last.pt")
    expected = rf"last\.pt is a training checkpoint .*use the run's model file {re.escape(str(run / 'model.pt'))}"
    with pytest.raises(CheckpointError, match=expected):
        load_served_model(run / "checkpoints" / "last.pt")
