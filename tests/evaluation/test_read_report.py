"""Read accuracy through the evaluation: the report's Reading section and crops, metrics.json, the API and
`detforge eval --detections` with texts, and an evaluation without texts left as it was."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from detforge.cli import main
from detforge.errors import ConfigError
from detforge.evaluation.evaluate_predictions import evaluate_predictions
from detforge.evaluation.report_read import CROP_HEIGHT, crop_box
from detforge.evaluation.results_io import to_coco_results
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

CATS = Categories.from_names(["task"])
A, B = (10.0, 10.0, 60.0, 40.0), (100.0, 50.0, 150.0, 80.0)
EVIL = "<b>3</b>"


def _dets(rows: list[tuple[float, tuple[float, float, float, float], str | None]]) -> Detections:
    det = Detections(
        torch.tensor([r[1] for r in rows], dtype=torch.float32).reshape(-1, 4),
        torch.zeros(len(rows), dtype=torch.int64),
        torch.tensor([r[0] for r in rows], dtype=torch.float32),
        (100, 200),
    )
    return det.with_texts([r[2] for r in rows], [0.5 if r[2] is not None else math.nan for r in rows])


def _case(tmp_path: Path, image_factory: Callable[..., Path]):  # type: ignore[no-untyped-def]
    images = [
        ImageRecord(
            i, f"p{i}.png", image_factory(tmp_path / "data" / "images" / f"p{i}.png", 200, 100, seed=i), 200, 100
        )
        for i in (1, 2, 3)
    ]
    images.append(ImageRecord(4, "gone.png", tmp_path / "data" / "images" / "gone.png", 200, 100))
    anns = [
        Annotation(1, 1, 1, A, text="3.14"),
        Annotation(2, 1, 1, B, text="3.15"),
        Annotation(3, 2, 1, A, text="3.15"),
        Annotation(4, 3, 1, A, text="12"),
        Annotation(5, 4, 1, A, text=EVIL),
    ]
    preds = {
        1: _dets([(0.9, A, "3.14"), (0.8, B, "3.16")]),
        2: _dets([(0.9, A, "3.16")]),
        3: _dets([(0.9, A, "12")]),
        4: _dets([(0.9, A, "3")]),  # misread on an image that cannot be read from disk
    }
    return images, anns, preds


def test_report_has_a_reading_section_with_crops(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    images, anns, preds = _case(tmp_path, image_factory)
    out = tmp_path / "report"
    result = evaluate_predictions(images, anns, CATS, preds, out_dir=out, score_threshold=0.5, bootstrap_n=0)
    read = result.read
    assert read is not None
    assert (read.num_labelled, read.num_matched, read.num_exact) == (5, 5, 2)
    assert read.page_accuracy == pytest.approx(1 / 4)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Reading</h2>" in page and "Most common misreads" in page
    assert page.index("<code>3.15</code></td><td><code>3.16</code></td><td>2</td>") < page.index("&lt;b&gt;3&lt;/b&gt;")
    assert EVIL not in page
    crops = sorted(p.name for p in (out / "misreads").iterdir())
    assert crops == ["001_0_image_1.jpg", "001_1_image_2.jpg"]  # image 4's crop: noted, not fatal
    assert "cannot show image 4" in page
    with Image.open(out / "misreads" / crops[0]) as crop:
        assert crop.height == CROP_HEIGHT and crop.width > CROP_HEIGHT
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert data["read"]["num_exact"] == 2 and data["read"]["misreads"][0]["count"] == 2
    assert json.loads(json.dumps(result.to_dict()))["read"]["exact_accuracy"] == pytest.approx(0.4)


def test_without_texts_the_evaluation_is_unchanged(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    images, anns, preds = _case(tmp_path, image_factory)
    out = tmp_path / "report"
    plain = {i: d.without_texts() for i, d in preds.items()}
    result = evaluate_predictions(images, anns, CATS, plain, out_dir=out, score_threshold=0.5, bootstrap_n=0)
    assert result.read is None and result.to_dict()["read"] is None
    assert "Reading" not in (out / "report.html").read_text(encoding="utf-8")
    assert "read" not in json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert not (out / "misreads").exists()


def test_crop_box_pads_clips_and_refuses_empty_boxes() -> None:
    image = Image.new("RGB", (200, 100), "white")
    crop = crop_box(image, (0.0, 0.0, 40.0, 20.0))  # 5 px context, clipped at the top-left corner
    assert crop.size == (round(45 * CROP_HEIGHT / 25), CROP_HEIGHT)
    assert crop_box(image, (0.0, 40.0, 200.0, 42.0)).width == 6 * CROP_HEIGHT  # a thin strip: width capped
    with pytest.raises(ValueError, match="no area"):
        crop_box(image, (300.0, 10.0, 320.0, 20.0))


def _write_dataset(tmp_path: Path, image_factory: Callable[..., Path]) -> tuple[Path, dict[int, Detections]]:
    images, anns, preds = _case(tmp_path, image_factory)
    image_factory(tmp_path / "data" / "images" / "gone.png", 200, 100, seed=4)
    coco = {
        "images": [{"id": im.id, "file_name": im.file_name, "width": 200, "height": 100} for im in images],
        "annotations": [
            {"id": a.id, "image_id": a.image_id, "category_id": 1, "iscrowd": 0, "area": 1500.0,
             "bbox": [a.bbox[0], a.bbox[1], a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]],
             "attributes": {"text": a.text}}
            for a in anns
        ],
        "categories": [{"id": 1, "name": "task"}],
    }  # fmt: skip
    (tmp_path / "data" / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    return tmp_path / "data", preds


def test_cli_eval_of_detections_with_text(
    tmp_path: Path, image_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, preds = _write_dataset(tmp_path, image_factory)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(to_coco_results(preds, CATS)), encoding="utf-8")
    args = ["eval", "--detections", str(results), str(data), "--split", "annotations", "--bootstrap", "0"]
    assert main([*args, "--score-threshold", "0.5"]) == 0
    summary = capsys.readouterr().out
    assert "read: 0.400 exact on 5 matched boxes, CER" in summary
    assert "end to end 0.400 (detection recall 1.000) of 5 labelled boxes, pages 0.250 of 4" in summary
    assert main([*args, "--json"]) == 0
    read = json.loads(capsys.readouterr().out)["read"]
    assert read["num_matched"] == 5 and read["misreads"][0]["truth"] == "3.15"
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(to_coco_results({i: d.without_texts() for i, d in preds.items()}, CATS)))
    assert main(["eval", "--detections", str(plain), str(data), "--split", "annotations", "--bootstrap", "0"]) == 0
    assert "read:" not in capsys.readouterr().out


def test_read_flags_with_a_detections_file_are_refused(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    import detforge

    data, preds = _write_dataset(tmp_path, image_factory)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(to_coco_results(preds, CATS)), encoding="utf-8")
    with pytest.raises(ConfigError, match="read, read_pattern apply to a model"):
        detforge.evaluate(None, data, split=None, detections=results, read=True, read_pattern="[0-9.]+")
