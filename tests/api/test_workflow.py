"""The README's workflow through the real CLI entry point, on a small bundled sample: every verb a user
runs, from generating data to evaluating and predicting with the trained model."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.cli import main
from detforge.models.artifact import load_model, save_model

TINY_MODEL = [
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=96",
    "train.max_iter=2",
    "train.batch_size=2",
    "eval.period=2",
    "data.num_workers=0",
    "data.flip=false",
]


def _csv_rows(path: Path) -> dict[str, list[tuple[str, float, np.ndarray]]]:
    """(class, score, XYXY box) of each row of a `predict --format csv` file, by image file."""
    rows: dict[str, list[tuple[str, float, np.ndarray]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            box = np.array([float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")])
            rows.setdefault(row["file"], []).append((row["class"], float(row["score"]), box))
    return rows


def _assert_same_detections(a: Path, b: Path) -> int:
    """Every image has the same detections in the CSV files `a` and `b`: same classes, scores within 2e-3
    and boxes within 0.5 px (both files round to 2-4 decimals), each paired with its closest box.
    Returns the number of detections."""
    rows_a, rows_b = _csv_rows(a), _csv_rows(b)
    assert rows_a.keys() == rows_b.keys()
    for name, dets_a in rows_a.items():
        dets_b = list(rows_b[name])
        assert len(dets_a) == len(dets_b), name
        for cls, score, box in dets_a:
            candidates = [d for d in dets_b if d[0] == cls]
            assert candidates, (name, cls)
            match = min(candidates, key=lambda d: float(np.abs(d[2] - box).max()) + abs(d[1] - score))
            assert np.abs(match[2] - box).max() < 0.5, (name, box, match[2])
            assert abs(match[1] - score) < 2e-3, (name, score, match[1])
            dets_b.remove(match)
    return sum(len(v) for v in rows_a.values())


def _ap(capsys: pytest.CaptureFixture[str], *argv: str) -> float:
    """The AP `detforge eval ... --json` prints."""
    capsys.readouterr()
    assert main(["eval", *argv, "--bootstrap", "0", "--json"]) == 0
    return float(json.loads(capsys.readouterr().out)["metrics"]["ap"])


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflow")
    assert main(["data", "sample", str(root / "data"), "--n", "12", "--seed", "3"]) == 0
    return root


@pytest.fixture(scope="module")
def trained(work: Path) -> Path:
    run = work / "run"
    assert main(["train", str(work / "data"), *TINY_MODEL, "--out", str(run), "--no-progress"]) == 0
    return run / "model.pt"


def test_data_verbs(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = work / "data"
    capsys.readouterr()
    assert main(["data", "check", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_images"] == 12
    assert report["instances_per_class"]["task_number"] >= 12
    assert main(["data", "stats", str(data), "--out", str(work / "stats")]) == 0
    assert "task_number" in capsys.readouterr().out
    assert (work / "stats" / "index.html").is_file()
    assert main(["data", "show", str(data), "--out", str(work / "gallery"), "--n", "4"]) == 0
    assert (work / "gallery" / "gallery.png").is_file()
    assert main(["data", "convert", str(data), str(work / "yolo"), "--to", "yolo"]) == 0
    assert (
        main(
            [
                "data",
                "split",
                str(work / "yolo"),
                "--out",
                str(work / "resplit"),
                "--ratios",
                "0.5",
                "0.5",
                "--to",
                "coco",
                "--rename",
            ]
        )
        == 0
    )
    resplit = sorted(p.name for p in (work / "resplit" / "annotations").glob("*.json"))
    assert resplit == ["instances_train.json", "instances_val.json"]
    names = {
        im["file_name"]
        for p in (work / "resplit" / "annotations").glob("*.json")
        for im in json.loads(p.read_text())["images"]
    }
    assert len(names) == 12 and all(n[:6].isdigit() for n in names)


def test_bad_input_is_named_and_exits_1(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(work / "nope")]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["train", str(work / "data"), "train.learning_rate=0.1"]) == 1
    err = capsys.readouterr().err
    assert "train.learning_rate" in err and "train.lr" in err


def test_train_writes_a_loadable_calibrated_model(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _detector, spec = load_model(trained)
    assert spec.class_names == ("task_number",)
    assert spec.model_name == "fasterrcnn_mobilenet_v3_large_320_fpn"
    run = trained.parent
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(e["event"] == "eval" and "ap" in e and "val_loss" in e for e in events)
    assert (run / "config.yaml").is_file() and any((run / "tb").iterdir())


def test_eval_predict_and_eval_of_detections(work: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(trained),
                str(work / "data"),
                "--split",
                "test",
                "--out",
                str(work / "eval"),
                "--bootstrap",
                "20",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["bootstrap"]["num_images"] == len(list((work / "data" / "images" / "test").iterdir()))
    assert result["bootstrap"]["n"] == 20
    assert (work / "eval" / "report.html").is_file()

    # The test split's own boxes, given as detections, score AP 1.0; moved off their objects, AP 0.0.
    truth = json.loads((work / "data" / "annotations" / "instances_test.json").read_text())["annotations"]
    assert truth
    for name, shift, expected in (("truth.json", 0.0, 1.0), ("moved.json", 1.0, 0.0)):
        detections = [
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [a["bbox"][0] + shift * a["bbox"][2], *a["bbox"][1:]],
                "score": 1.0,
            }
            for a in truth
        ]
        (work / name).write_text(json.dumps(detections))
        assert _ap(capsys, "--detections", str(work / name), str(work / "data"), "--split", "test") == expected

    preds = work / "preds"
    test_images = work / "data" / "images" / "test"
    assert (
        main(
            [
                "predict",
                str(trained),
                str(test_images),
                "--out",
                str(preds),
                "--score-threshold",
                "0",
                "--format",
                "coco",
                "csv",
                "cvat",
                "labelstudio",
                "yolo",
                "--save-images",
                "--ids-from",
                str(work / "data"),
            ]
        )
        == 0
    )
    for name in ("predictions.json", "predictions.csv", "annotations.xml", "tasks.json", "labels"):
        assert (preds / name).exists(), name
    assert len(list((preds / "images").iterdir())) == len(list(test_images.iterdir()))

    # Detections written by predict evaluate to the same AP as the model itself (same detections).
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "--detections",
                str(preds / "predictions.json"),
                str(work / "data"),
                "--split",
                "test",
                "--bootstrap",
                "0",
                "--json",
            ]
        )
        == 0
    )
    from_file = json.loads(capsys.readouterr().out)
    assert from_file["metrics"]["ap"] == pytest.approx(result["metrics"]["ap"], abs=1e-3)


def test_export_then_predict_and_eval_with_onnx(work: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    onnx_file = work / "model.onnx"
    assert main(["export", str(trained), "--out", str(onnx_file)]) == 0
    assert "parity vs PyTorch" in capsys.readouterr().out
    test_images = work / "data" / "images" / "test"
    eager = work / "preds_eager"
    exported = work / "preds_onnx"
    for model, out in ((trained, eager), (onnx_file, exported)):
        assert (
            main(
                [
                    "predict",
                    str(model),
                    str(test_images),
                    "--out",
                    str(out),
                    "--score-threshold",
                    "0.01",
                    "--format",
                    "csv",
                ]
            )
            == 0
        )
    # same detections from ONNX Runtime as from PyTorch: classes, scores and boxes, image by image
    assert _assert_same_detections(eager / "predictions.csv", exported / "predictions.csv") > 1
    data = str(work / "data")
    assert _ap(capsys, str(onnx_file), data, "--split", "test") == pytest.approx(
        _ap(capsys, str(trained), data, "--split", "test"), abs=1e-4
    )


def test_eval_calibrate_stores_threshold_used_by_predict(
    work: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.inference import Predictor

    model = work / "calibrated.pt"
    detector, spec = load_model(trained)
    save_model(model, detector, replace(spec, score_threshold=0.987))  # a value calibration will not find
    capsys.readouterr()
    args = ["eval", str(model), str(work / "data"), "--split", "val", "--bootstrap", "0", "--calibrate"]
    assert main([*args, "--json"]) == 0
    reported = json.loads(capsys.readouterr().out)["calibration"]["threshold"]
    _, stored = load_model(model)
    assert reported != pytest.approx(0.987)
    assert stored.score_threshold == pytest.approx(reported)  # the reported threshold replaced the old one
    predictor = Predictor(model)
    assert predictor.score_threshold == pytest.approx(reported)
    assert predictor.threshold_source == "calibrated"
    # a precision target outside (0, 1] is a usage error (exit 2) caught before the model loads; the file is unchanged
    before = model.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--target-precision", "1.01"])
    assert exit_info.value.code == 2
    assert model.read_bytes() == before
