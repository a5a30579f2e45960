"""A model artifact says whether its score threshold was calibrated: not after training without calibration,
yes after `detforge eval --calibrate`; files written before this was recorded stay readable."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from detforge.cli import main
from detforge.export.metadata import ExportMetadata
from detforge.export.runtime import artifact_metadata
from detforge.inference import Predictor
from detforge.models import ModelSpec, load_model
from detforge.thresholds import DEFAULT_SCORE_THRESHOLD

TINY_MODEL = [
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=96",
    "train.max_iter=2",
    "train.batch_size=2",
    "eval.period=2",
    "data.num_workers=0",
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threshold")
    assert main(["data", "sample", str(root / "data"), "--n", "12", "--seed", "3"]) == 0
    run = root / "run"
    assert main(["train", str(root / "data"), *TINY_MODEL, "--out", str(run), "--no-calibrate", "--no-progress"]) == 0
    return root


def test_a_model_trained_without_calibration_says_its_threshold_is_the_default(work: Path) -> None:
    detector, spec = load_model(work / "run" / "model.pt")
    assert spec.score_threshold == DEFAULT_SCORE_THRESHOLD
    assert spec.score_threshold_calibrated is False
    predictor = Predictor(work / "run" / "model.pt", device="cpu")
    assert (predictor.score_threshold, predictor.threshold_source) == (DEFAULT_SCORE_THRESHOLD, "default")
    assert "(default)" in repr(predictor)
    assert artifact_metadata(detector, spec, "onnx").score_threshold_calibrated is False


def test_eval_calibrate_makes_it_say_calibrated(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = work / "calibrated.pt"
    shutil.copyfile(work / "run" / "model.pt", model)
    capsys.readouterr()
    args = ["eval", str(model), str(work / "data"), "--split", "val", "--bootstrap", "0", "--calibrate", "--json"]
    assert main(args) == 0
    reported = json.loads(capsys.readouterr().out)["calibration"]["threshold"]
    detector, spec = load_model(model)
    assert spec.score_threshold == pytest.approx(reported)
    assert spec.score_threshold_calibrated is True
    predictor = Predictor(model, device="cpu")
    assert predictor.threshold_source == "calibrated" and predictor.score_threshold == pytest.approx(reported)
    metadata = artifact_metadata(detector, spec, "onnx")
    assert metadata.score_threshold_calibrated is True
    again = ExportMetadata.from_props(metadata.to_props(), where="test")
    assert again.score_threshold_calibrated is True and again == metadata


def _format1_without_the_flag(path: Path, source: Path, threshold: float) -> Path:
    """A model file as the first releases wrote it (a torch zip), whose spec does not record the calibration."""
    detector, spec = load_model(source)
    spec_dict = spec.to_dict()
    del spec_dict["score_threshold_calibrated"]
    spec_dict["score_threshold"] = threshold
    payload = {
        "format": "detforge.model",
        "format_version": 1,
        "spec": spec_dict,
        "setup": asdict(detector.setup),
        "detection_params": asdict(detector.detection_params),
        "state_dict": {k: v.detach().cpu() for k, v in detector.model.state_dict().items()},
    }
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(("threshold", "calibrated"), [(DEFAULT_SCORE_THRESHOLD, False), (0.4321, True)])
def test_files_written_before_the_flag_existed_still_load(
    work: Path, tmp_path: Path, threshold: float, calibrated: bool
) -> None:
    old = _format1_without_the_flag(tmp_path / "old.pt", work / "run" / "model.pt", threshold)
    _, spec = load_model(old)
    assert (spec.score_threshold, spec.score_threshold_calibrated) == (threshold, calibrated)
    assert Predictor(old, device="cpu").threshold_source == ("calibrated" if calibrated else "default")


@pytest.mark.parametrize(("threshold", "calibrated"), [(DEFAULT_SCORE_THRESHOLD, False), (0.4321, True)])
def test_exports_written_before_the_flag_existed_still_load(work: Path, threshold: float, calibrated: bool) -> None:
    detector, spec = load_model(work / "run" / "model.pt")
    props = artifact_metadata(detector, spec, "onnx").to_props()
    del props["detforge.score_threshold_calibrated"]
    props["detforge.score_threshold"] = json.dumps(threshold)
    assert ExportMetadata.from_props(props, where="old.onnx").score_threshold_calibrated is calibrated


def test_the_flag_is_validated_and_round_trips() -> None:
    spec = ModelSpec(
        model_name="fasterrcnn_mobilenet_v3_large_320_fpn",
        num_classes=1,
        class_names=("a",),
        category_ids=(1,),
        min_size=64,
        max_size=96,
    )
    assert spec.score_threshold == DEFAULT_SCORE_THRESHOLD and spec.score_threshold_calibrated is False
    calibrated = ModelSpec.from_dict({**spec.to_dict(), "score_threshold": 0.5, "score_threshold_calibrated": True})
    assert calibrated.score_threshold_calibrated is True  # recorded: not inferred from the value
    with pytest.raises(ValueError, match="score_threshold_calibrated: expected true or false, got 'yes'"):
        ModelSpec.from_dict({**spec.to_dict(), "score_threshold_calibrated": "yes"})


def test_exports_and_the_service_say_whether_the_threshold_was_calibrated(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exported file's predictor reported its stored threshold as "explicit", and the service's
    /v1/model did not say whether the threshold was calibrated."""
    from fastapi.testclient import TestClient

    from detforge.api.export import export_model
    from detforge.export.open_model import open_predictor
    from detforge.serving.app import create_app
    from detforge.serving.server import load_served_model
    from detforge.serving.settings import ServeSettings

    calibrated = tmp_path / "calibrated.pt"
    shutil.copyfile(work / "run" / "model.pt", calibrated)
    args = ["eval", str(calibrated), str(work / "data"), "--split", "val", "--bootstrap", "0", "--calibrate"]
    assert main([*args, "--json"]) == 0
    capsys.readouterr()
    for model, source in ((work / "run" / "model.pt", "default"), (calibrated, "calibrated")):
        onnx = export_model(model, out=tmp_path / f"{model.stem}.onnx", progress=False).path
        assert open_predictor(onnx, device="cpu").threshold_source == source
        assert open_predictor(onnx, device="cpu", score_threshold=0.3).threshold_source == "explicit"
        for served in (model, onnx):
            app = create_app(load_served_model(served), settings=ServeSettings())
            info = TestClient(app).get("/v1/model").json()
            assert info["score_threshold_calibrated"] is (source == "calibrated"), served
