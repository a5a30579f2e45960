"""`--json` on every verb: stdout is one JSON document with the keys docs/cli-json.md documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detforge.cli import build_parser, main
from tiny_fixtures import write_tiny_coco


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 0) -> Any:
    assert main(argv) == status
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_coco(tmp_path_factory.mktemp("coco") / "data", n_train=6, n_val=2)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.conftest import _make_artifact  # the export tests' tiny random-weight artifact

    return _make_artifact(tmp_path_factory.mktemp("model") / "model.pt")


def _verbs_with_json() -> list[str]:
    """Every verb (data verbs as `data VERB`) whose parser has a --json flag."""
    import argparse

    def subs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return next((dict(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})

    found = []
    for name, parser in subs(build_parser()).items():
        for sub_name, sub in (subs(parser) or {"": parser}).items():
            if any(a.dest == "json" for a in sub._actions):
                found.append(f"{name} {sub_name}".strip())
    return sorted(found)


def test_every_verb_but_serve_and_config_has_json() -> None:
    assert _verbs_with_json() == sorted([
        "benchmark", "data check", "data convert", "data sample", "data show", "data split", "data stats", "eval",
        "export", "index", "models", "predict", "train",
    ])  # fmt: skip


def test_data_verbs_json(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_json(capsys, ["data", "sample", str(tmp_path / "sample"), "--n", "6", "--json"])
    assert out == {"out": str(tmp_path / "sample"), "images": 6, "seed": 0}

    out = _run_json(capsys, ["data", "convert", str(dataset), str(tmp_path / "yolo"), "--to", "yolo", "--json"])
    assert out == {"out": str(tmp_path / "yolo"), "format": "yolo"}

    out = _run_json(capsys, ["data", "split", str(dataset), "--out", str(tmp_path / "split"), "--json"])
    assert out == {"outputs": [str(tmp_path / "split")]}
    folds = ["data", "split", str(dataset), "--out", str(tmp_path / "folds"), "--folds", "2", "--json"]
    assert _run_json(capsys, folds) == {"outputs": [str(tmp_path / "folds" / f"fold_{i}") for i in range(2)]}

    out = _run_json(capsys, ["data", "show", str(dataset), "--out", str(tmp_path / "show"), "--n", "2", "--json"])
    assert set(out) == {"html", "grid"} and Path(out["html"]).is_file() and Path(out["grid"]).is_file()


def test_predict_json(artifact: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_json(capsys, ["predict", str(artifact), str(dataset / "images" / "val"), "--score-threshold", "0",
                             "--json"])  # fmt: skip
    assert set(out) == {"images", "failed", "detections", "out", "results"}
    assert out["images"] == 2 and out["failed"] == 0 and out["out"] is None
    assert [r["source"] for r in out["results"]] == ["007.png", "008.png"]
    first = out["results"][0]
    assert first["image_size"] == [64, 64] and first["error"] is None
    assert out["detections"] == sum(len(r["detections"]) for r in out["results"]) > 0
    box = first["detections"][0]
    assert set(box) == {"box", "label", "score"} and len(box["box"]) == 4 and box["label"] in (0, 1)


def test_predict_json_reports_a_bad_image(artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    out = _run_json(capsys, ["predict", str(artifact), str(bad), "--json"], status=1)
    assert out["images"] == 0 and out["failed"] == 1
    assert out["results"][0]["detections"] == [] and "bad.jpg" in out["results"][0]["error"]


def _export_report(path: Path) -> Any:
    from detforge.export import ExportMetadata, ExportReport, ParityReport

    metadata = ExportMetadata(
        model_name="fasterrcnn_mobilenet_v2_fpn", class_names=("cat", "dog"), category_ids=(3, 7), min_size=64,
        max_size=96, score_threshold=0.25, detection_score_thresh=0.0, nms_thresh=0.5, detections_per_img=50,
        has_masks=False, detforge_version="0", format="onnx",
    )  # fmt: skip
    parity = ParityReport(((64, 64), (61, 97)), 12, 0.01, 1e-6, 0, 0, 0.0)
    return ExportReport(path, "onnx", metadata, parity, 1234, 2.5)


def test_export_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import detforge.api

    seen: dict[str, Any] = {}

    def fake_export(model: Path, **kwargs: Any) -> Any:  # the real export is tested in tests/export
        seen.update(kwargs)
        return _export_report(kwargs["out"])

    monkeypatch.setattr(detforge.api, "export_model", fake_export)
    (tmp_path / "model.pt").write_bytes(b"PK")  # looked at by the CLI's early checks only
    out = _run_json(capsys, ["export", str(tmp_path / "model.pt"), "--out", str(tmp_path / "m.onnx"), "--json",
                             "--no-progress"])  # fmt: skip
    assert seen["progress"] is False
    assert out["path"] == str(tmp_path / "m.onnx") and out["format"] == "onnx" and out["size_bytes"] == 1234
    assert out["class_names"] == ["cat", "dog"] and out["score_threshold"] == 0.25
    assert set(out) == {"path", "format", "size_bytes", "seconds", "model", "class_names", "score_threshold",
                        "min_size", "max_size", "parity"}  # fmt: skip
    assert out["parity"] == {"images": 2, "image_sizes": [[64, 64], [61, 97]], "detections": 12,
                             "max_box_diff_px": 0.01, "max_score_diff": 1e-6, "count_mismatch": 0,
                             "label_mismatch": 0, "max_mask_diff": 0.0, "reference": "PyTorch",
                             "pytorch_box_diff_px": None}  # fmt: skip


def test_benchmark_json(artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _run_json(capsys, ["benchmark", str(artifact), "--backends", "eager", "--runs", "1", "--warmup", "0",
                              "--json"])  # fmt: skip
    assert [r["backend"] for r in rows] == ["eager"]
    assert set(rows[0]) == {
        "backend", "images", "image_size", "image_sizes", "synthetic", "runs", "median_ms", "min_ms", "max_ms",
        "images_per_s", "detections", "max_box_diff_px", "max_score_diff", "count_mismatch",
    }  # fmt: skip
    assert rows[0]["runs"] == 1 and rows[0]["median_ms"] > 0 and rows[0]["synthetic"] is True
    assert rows[0]["images"] == len(rows[0]["image_sizes"]) > 1  # the parity check's odd portrait/landscape sizes
    assert rows[0]["image_size"] == rows[0]["image_sizes"][0]
