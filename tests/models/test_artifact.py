"""The model artifact: round trip, metadata validation, and errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from detforge import __version__
from detforge.errors import CheckpointError
from detforge.models import BackboneSetup, DetectionParams, ModelSpec, build_detector, load_model, save_model
from detforge.models.artifact_io import read_artifact
from detforge.models.detector import Detector
from detforge.structures.detections import Target

TINY = {"min_size": 64, "max_size": 96}
NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"
Batch = tuple[list[torch.Tensor], list[Target]]


def _spec(**changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "model_name": NAME,
        "num_classes": 3,
        "class_names": ("cat", "dog", "eel"),
        "category_ids": (1, 5, 9),
        "min_size": 64,
        "max_size": 96,
        "extra": {"dataset": "pets", "val_map": 0.42, "epochs": 3},
    }
    return ModelSpec(**{**fields, **changes})  # type: ignore[arg-type]


def _trained(batch: Batch) -> Detector:
    """A detector whose weights and BatchNorm statistics moved away from their initial values."""
    torch.manual_seed(0)
    detector, _ = build_detector(NAME, num_classes=3, weights="none", **TINY)
    optimizer = torch.optim.SGD(detector.parameters(), lr=0.01)
    detector.train()
    losses = detector.forward_loss(*batch)
    sum(losses.values()).backward()  # type: ignore[union-attr]
    optimizer.step()
    detector.detection_params = DetectionParams(score_thresh=0.01, nms_thresh=0.4, detections_per_img=20)
    return detector.eval()


def test_round_trip_gives_identical_predictions(tmp_path: Path, batch: Batch) -> None:
    detector = _trained(batch)
    path = save_model(tmp_path / "model.pt", detector, _spec())
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # written atomically, no temp file left
    loaded, spec = load_model(path)
    assert spec == _spec() and spec.detforge_version == __version__ and spec.score_threshold == 0.5
    assert spec.extra == {"dataset": "pets", "val_map": 0.42, "epochs": 3.0}
    assert not loaded.training and loaded.setup == detector.setup == BackboneSetup(pretrained=False)
    assert loaded.detection_params == DetectionParams(0.01, 0.4, 20)
    before, after = detector.predict(batch[0]), loaded.predict(batch[0])
    assert sum(len(d) for d in before) > 0
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores) and torch.equal(a.labels, b.labels)
    # the file is safetensors with JSON metadata: readable without detforge (and without pickle)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "detforge.model" and meta["format_version"] == "2"
    assert json.loads(meta["spec"])["class_names"] == ["cat", "dog", "eel"]


def test_artifact_as_starting_weights_for_another_class_count(tmp_path: Path, batch: Batch) -> None:
    detector = _trained(batch)
    path = save_model(tmp_path / "model.pt", detector, _spec())
    finetuned, report = build_detector(NAME, num_classes=5, weights=path, **TINY)
    assert len(report.reinitialised) == 4 and report.unexpected == ()
    assert finetuned.setup.pretrained and finetuned.setup.frozen_bn_eps == 1e-5
    key = "backbone.body.0.0.weight"
    assert torch.equal(finetuned.model.state_dict()[key], detector.model.state_dict()[key])
    # a fine-tuned artifact round-trips its FrozenBatchNorm set-up too
    spec5 = _spec(num_classes=5, class_names=tuple("abcde"), category_ids=(1, 2, 3, 4, 5))
    loaded, _ = load_model(save_model(tmp_path / "ft.pt", finetuned, spec5))
    assert loaded.setup == finetuned.setup
    assert torch.equal(loaded.predict(batch[0])[0].scores, finetuned.predict(batch[0])[0].scores)
    with pytest.raises(CheckpointError, match="not of 'fasterrcnn_mobilenet_v2_fpn'"):
        build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=3, weights=path, **TINY)


def test_spec_validation() -> None:
    assert ModelSpec.from_dict(_spec().to_dict()) == _spec()
    with pytest.raises(ValueError, match="class_names: expected 3 strings"):
        _spec(class_names=("a", "b"))
    with pytest.raises(ValueError, match="category_ids: expected 3 distinct"):
        _spec(category_ids=(1, 1, 2))
    with pytest.raises(ValueError, match=r"extra\['bad'\]"):
        _spec(extra={"bad": [1]})
    with pytest.raises(ValueError, match="score_threshold"):
        _spec(score_threshold=1.5)
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        ModelSpec.from_dict({**_spec().to_dict(), "colour": "red"})


def test_save_refuses_a_spec_that_does_not_describe_the_detector(tmp_path: Path, batch: Batch) -> None:
    detector = _trained(batch)
    with pytest.raises(ValueError, match=r"ModelSpec\.min_size is 128 but the detector has 64"):
        save_model(tmp_path / "m.pt", detector, _spec(min_size=128, max_size=256))
    assert not (tmp_path / "m.pt").exists()


@pytest.fixture
def saved(tmp_path: Path, batch: Batch) -> dict[str, object]:
    """A saved model as a format-1 payload (the torch zip of the first releases, still read)."""
    contents = read_artifact(save_model(tmp_path / "model.pt", _trained(batch), _spec()))
    sections = {"spec": contents.spec, "setup": contents.setup, "detection_params": contents.detection_params}
    return {"format": "detforge.model", "format_version": 1, **sections, "state_dict": dict(contents.state_dict)}


def _write(tmp_path: Path, payload: object) -> Path:
    path = tmp_path / "edited.pt"
    torch.save(payload, path)
    return path


def test_load_errors_name_the_keys(tmp_path: Path, saved: dict[str, object]) -> None:
    state = saved["state_dict"]
    assert isinstance(state, dict)
    cases = {
        "missing: rpn.head.conv.0.0.weight": {k: v for k, v in state.items() if k != "rpn.head.conv.0.0.weight"},
        "unexpected: extra.weight": {**state, "extra.weight": torch.zeros(1)},
        "wrong shape: backbone.body.0.0.weight (file [1], model [16, 3, 3, 3])": {
            **state,
            "backbone.body.0.0.weight": torch.zeros(1),
        },
        "not tensors: backbone.body.0.0.weight": {**state, "backbone.body.0.0.weight": 3.0},
    }
    for expected, edited in cases.items():
        with pytest.raises(CheckpointError, match=r"edited\.pt: the weights do not match") as caught:
            load_model(_write(tmp_path, {**saved, "state_dict": edited}))
        assert expected in str(caught.value)
    with pytest.raises(CheckpointError, match=r"missing \['setup'\], unknown \['optimizer'\]"):
        load_model(_write(tmp_path, {**{k: v for k, v in saved.items() if k != "setup"}, "optimizer": {}}))
    with pytest.raises(CheckpointError, match=r"invalid metadata: ModelSpec\.num_classes"):
        load_model(_write(tmp_path, {**saved, "spec": {**saved["spec"], "num_classes": 0}}))  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match="unknown model 'yolo'"):
        load_model(_write(tmp_path, {**saved, "spec": {**saved["spec"], "model_name": "yolo"}}))  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match=r"not a detforge model file .*build_detector"):
        load_model(_write(tmp_path, state))


def test_corrupt_and_missing_files(tmp_path: Path, saved: dict[str, object]) -> None:
    good = _write(tmp_path, saved).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        load_model(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_model(garbage)
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "absent.pt")
