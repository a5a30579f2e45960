"""The artifact format: safetensors + JSON metadata (no unpickling), format-1 torch files still read,
every stored value round-trips, and foreign or damaged files are CheckpointErrors naming the file."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from detforge.errors import CheckpointError
from detforge.models import DetectionParams, ModelSpec, build_detector, load_model, save_model
from detforge.models.artifact_io import read_artifact, read_metadata, write_artifact
from detforge.models.detector import Detector
from detforge.reading.settings import ReadSettings

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"
TINY = {"min_size": 64, "max_size": 96}
READ = ReadSettings(
    classes=("number",),
    allow="0123456789.)",
    pattern=r"(?P<value>[0-9]+)[.)]?",
    lexicon=("1", "2a", "Ü12"),
    padding=0.125,
    min_score=0.37,
    min_score_calibrated=True,
)


def _spec(**changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "model_name": NAME,
        "num_classes": 2,
        "class_names": ("number", "figure"),
        "category_ids": (3, 7),
        "score_threshold": 0.31,
        "extra": {"dataset": "tasks", "val_map": 0.1 + 0.2},
        "read": READ,
        **TINY,
    }
    return ModelSpec(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def detector() -> Detector:
    torch.manual_seed(0)
    model, _ = build_detector(NAME, num_classes=2, weights="none", **TINY)
    with torch.no_grad():  # weights and BatchNorm statistics away from their initial values
        for value in model.model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.rand_like(value) * 0.01)
    model.detection_params = DetectionParams(score_thresh=0.02, nms_thresh=0.45, detections_per_img=17)
    return model.eval()


def _same_weights(a: Detector, b: Detector, *, all_keys: bool = True) -> None:
    """Equal tensors (and dtypes) under every key of `a`, which has all of `b`'s keys when `all_keys`
    (False: `a` may lack BatchNorm counters, as a fine-tuning set-up with FrozenBatchNorm does)."""
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() if all_keys else set(sa) <= set(sb)
    assert all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


def _write_format1(path: Path, detector: Detector, spec: ModelSpec) -> Path:
    """A model file as the first releases wrote it: a torch zip of plain dicts and tensors."""
    payload = {
        "format": "detforge.model",
        "format_version": 1,
        "spec": spec.to_dict(),
        "setup": asdict(detector.setup),
        "detection_params": asdict(detector.detection_params),
        "state_dict": {k: v.detach().cpu() for k, v in detector.model.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(torch.serialization, "load", refuse)


def test_a_saved_model_loads_without_unpickling_anything(
    tmp_path: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_model(tmp_path / "model.pt", detector, _spec())
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # atomic: no temp file left
    assert path.read_bytes()[8:9] == b"{"  # a safetensors file, not a torch zip
    _no_unpickling(monkeypatch)
    loaded, spec = load_model(path)
    assert spec == _spec() and spec.read == READ and spec.score_threshold == 0.31
    assert loaded.setup == detector.setup and loaded.detection_params == detector.detection_params
    _same_weights(loaded, detector)
    # as starting weights for another run too
    again, report = build_detector(NAME, num_classes=2, weights=path, **TINY)
    assert report.reinitialised == () and again.setup.frozen_bn_eps == detector.setup.frozen_bn_eps
    _same_weights(again, detector, all_keys=False)


def test_the_metadata_is_json_readable_without_torch(tmp_path: Path, detector: Detector) -> None:
    path = save_model(tmp_path / "model.pt", detector, _spec())
    code = (
        "import sys, json; from detforge.models.artifact_io import read_metadata; "
        f"m = read_metadata({str(path)!r}); print(json.dumps([m['format_version'], json.loads(m['spec'])['read'], "
        "'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    version, read, torch_imported = json.loads(out)
    assert version == "2" and ReadSettings.from_dict(read) == READ and not torch_imported


def test_format1_files_still_load_and_are_rewritten_as_format2(tmp_path: Path, detector: Detector) -> None:
    path = _write_format1(tmp_path / "model.pt", detector, _spec())
    assert read_artifact(path).format_version == 1
    loaded, spec = load_model(path)
    assert spec == _spec() and loaded.detection_params == detector.detection_params
    _same_weights(loaded, detector)
    _same_weights(build_detector(NAME, num_classes=2, weights=path, **TINY)[0], detector, all_keys=False)
    # the calibration steps after training rewrite the file: it keeps everything and becomes format 2
    from detforge.engine.reading import store_read_settings

    settings = replace(READ, min_score=0.61)
    store_read_settings(path, settings)
    assert read_artifact(path).format_version == 2
    loaded, spec = load_model(path)
    assert spec == _spec(read=settings)
    _same_weights(loaded, detector)


def test_a_spec_without_reading_and_with_defaults_round_trips(tmp_path: Path, detector: Detector) -> None:
    plain = ModelSpec(NAME, 2, ("a", "b"), (1, 2), **TINY)  # type: ignore[arg-type]
    _, spec = load_model(save_model(tmp_path / "m.pt", detector, plain))
    assert spec == plain and spec.read is None and spec.extra == {}


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, detector: Detector) -> None:
    path = save_model(tmp_path / "model.pt", detector, _spec())
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"\[setup\]: not JSON-able"):
        write_artifact(path, {"spec": {}, "setup": {"x": float("nan")}, "detection_params": {}}, {})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_shared_and_strided_tensors_are_written(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    sections = {"spec": {}, "setup": {}, "detection_params": {}}
    path = write_artifact(tmp_path / "t.pt", sections, {"a": base, "b": base, "c": base.t(), "d": base[1]})
    state = read_artifact(path).state_dict
    assert torch.equal(state["a"], base) and torch.equal(state["c"], base.t()) and torch.equal(state["d"], base[1])


def _safetensors(path: Path, header: dict[str, object], data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_foreign_and_damaged_files_are_errors_naming_the_file(tmp_path: Path, detector: Detector) -> None:
    good = save_model(tmp_path / "model.pt", detector, _spec()).read_bytes()
    meta = read_metadata(tmp_path / "model.pt")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    save_file({"w": torch.zeros(2)}, tmp_path / "v3.pt", metadata={**meta, "format_version": "3"})
    save_file({"w": torch.zeros(2)}, tmp_path / "nosetup.pt", metadata={k: v for k, v in meta.items() if k != "setup"})
    save_file({"w": torch.zeros(2)}, tmp_path / "badjson.pt", metadata={**meta, "spec": "{not json"})
    save_file({"w": torch.zeros(2)}, tmp_path / "list.pt", metadata={**meta, "setup": "[1, 2]"})
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "short_header.pt").write_bytes(good[:200])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello, this is not a model\n")
    _safetensors(tmp_path / "array.pt", [1, 2])  # type: ignore[arg-type]
    _safetensors(tmp_path / "meta.pt", {"__metadata__": {"format": 2}})
    _safetensors(tmp_path / "broken_json.pt", {"a": "b"}).write_bytes(struct.pack("<Q", 5) + b"{abc}")
    _safetensors(tmp_path / "offsets.pt", {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 4)
    expected = {
        "plain.pt": r"not a detforge model file .*build_detector",
        "v3.pt": r"format_version '3'",
        "nosetup.pt": r"missing \['setup'\]",
        "badjson.pt": r"\[spec\] is not valid JSON",
        "list.pt": r"\[setup\] should be a mapping",
        "truncated.pt": r"corrupt safetensors file",
        "short_header.pt": r"truncated safetensors file",
        "empty.pt": r"corrupt or not a torch file",
        "text.pt": r"corrupt or not a torch file",
        "array.pt": r"corrupt or not a torch file",  # does not start like a safetensors file
        "meta.pt": r"corrupt safetensors header",
        "broken_json.pt": r"corrupt safetensors header",
        "offsets.pt": r"not a detforge model file",
        "absent.pt": r"no such file",
    }
    for name, message in expected.items():
        with pytest.raises(CheckpointError, match=message) as caught:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value), name
    with pytest.raises(CheckpointError, match=r"offsets\.pt: corrupt safetensors file"):
        build_detector(NAME, num_classes=2, weights=tmp_path / "offsets.pt", **TINY)
