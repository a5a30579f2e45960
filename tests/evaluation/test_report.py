"""The evaluation report: files, escaping, metrics.json, and the worst-images gallery."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.evaluation.evaluate_predictions import evaluate_predictions
from detforge.evaluation.matching import match_detections
from detforge.evaluation.report import GALLERY_STYLE, draw_image_errors, worst_images
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections
from detforge.visualization.colors import color_for

EVIL = "<img src=x onerror=alert(1)>"
CATS = Categories.from_names([EVIL, "dog"])


def _dets(rows: list[tuple[float, int, tuple[float, float, float, float]]]) -> Detections:
    return Detections(
        torch.tensor([r[2] for r in rows], dtype=torch.float32).reshape(-1, 4),
        torch.tensor([r[1] for r in rows], dtype=torch.int64),
        torch.tensor([r[0] for r in rows], dtype=torch.float32),
        (96, 128),
    )


def _dataset(tmp_path: Path, image_factory: Callable[..., Path]):  # type: ignore[no-untyped-def]
    images = [
        ImageRecord(i, f"img{i}.png", image_factory(tmp_path / "images" / f"img{i}.png", 128, 96, seed=i), 128, 96)
        for i in (1, 2, 3)
    ]
    images.append(ImageRecord(4, "gone.png", tmp_path / "images" / "gone.png", 128, 96))  # missing on disk
    anns = [
        Annotation(1, 1, 1, (10, 10, 50, 50)),
        Annotation(2, 1, 2, (60, 10, 100, 50)),
        Annotation(3, 2, 1, (10, 10, 50, 50)),
        Annotation(4, 3, 2, (20, 20, 60, 60)),
        Annotation(5, 4, 1, (10, 10, 40, 40)),
    ]
    preds = {
        1: _dets([(0.9, 0, (10, 10, 50, 50)), (0.8, 1, (60, 10, 100, 50))]),  # perfect
        2: _dets([(0.85, 0, (10, 10, 50, 50)), (0.7, 1, (70, 60, 120, 90)), (0.6, 0, (0, 60, 30, 90))]),  # 2 FP
        3: _dets([(0.2, 1, (20, 20, 60, 60))]),  # weak hit
        4: _dets([(0.95, 1, (60, 50, 100, 90))]),  # a false positive and a miss, image unreadable
    }
    return images, anns, preds


def test_report_files_escaping_and_metrics_json(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    images, anns, preds = _dataset(tmp_path, image_factory)
    out = tmp_path / "report"
    result = evaluate_predictions(images, anns, CATS, preds, out_dir=out, score_threshold=0.5, bootstrap_n=20, seed=1)
    assert result.report == out / "report.html"
    for name in ("report.html", "metrics.json", "pr.png", "f1.png", "confusion.png", "errors.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 500, name
    assert Image.open(out / "confusion.png").format == "PNG"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "cannot show" in page and "gone.png" in page  # the unreadable image is reported, not fatal
    gallery = sorted(p.name for p in (out / "worst").iterdir())
    assert gallery == ["001_image_2.jpg", "003_image_3.jpg"]  # image 4 (rank 2) could not be read
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert result.bootstrap is not None
    assert data["metrics"]["ap"] == pytest.approx(result.metrics.ap)
    assert data["bootstrap"]["ap_ci"] == [
        pytest.approx(result.bootstrap.ap_low),
        pytest.approx(result.bootstrap.ap_high),
    ]
    assert data["per_class"][0]["class"] == EVIL and data["confusion"]["names"][-1] == "background"
    assert data["calibration"]["threshold"] == pytest.approx(0.8) and data["confusion"]["score_threshold"] == 0.5
    assert json.loads(json.dumps(result.to_dict()))["report"] == str(out / "report.html")


def test_evaluate_predictions_numbers(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    images, anns, preds = _dataset(tmp_path, image_factory)
    result = evaluate_predictions(images, anns, CATS, preds, bootstrap_n=0, score_threshold=0.5)
    assert result.report is None and result.bootstrap is None and result.score_threshold == 0.5
    # pooled at 0.5: TPs .9 .85 .8; FPs .95 .7 .6; misses: image 3's box (det at .2) and image 4's box
    assert result.confusion.matrix.tolist() == [[2, 0, 1], [0, 1, 1], [1, 2, 0]]
    assert result.metrics.num_images == 4 and result.metrics.num_detections == 7
    assert [r.num_gt for r in result.table.rows] == [3, 2]
    assert dict(result.errors.counts)["background"] == 3 and result.errors.counts["missed"] == 1
    assert result.calibration is not None and result.calibration.f1 == pytest.approx(2 / 3)
    # without a threshold the best-F1 one is used: F1 2/3 at .8 and (within rounding) at .2 -> the higher
    assert evaluate_predictions(images, anns, CATS, preds, bootstrap_n=0).score_threshold == pytest.approx(0.8)


def test_worst_images_and_gallery_drawing(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    images, anns, preds = _dataset(tmp_path, image_factory)
    matches = match_detections(images, anns, CATS, preds)
    worst = worst_images(matches, images, score_threshold=0.5, k=10)
    assert [(w.image.id, len(w.fp), len(w.gt_missed), len(w.tp)) for w in worst] == [
        (2, 2, 0, 1), (4, 1, 1, 0), (3, 0, 1, 0),
    ]  # fmt: skip
    blank = Image.new("RGB", (128, 96), (255, 255, 255))
    drawn = np.asarray(draw_image_errors(blank, worst[0], matches))
    assert tuple(drawn[75, 70]) == color_for(GALLERY_STYLE["fp"])  # left edge of the FP box at x=70
    # the true positive coincides with its ground truth box: thin detection line outside, thick GT line inside
    assert tuple(drawn[30, 10]) == color_for(GALLERY_STYLE["tp"])
    assert tuple(drawn[30, 11]) == color_for(GALLERY_STYLE["gt"])
    missed = np.asarray(draw_image_errors(blank, worst[2], matches))
    assert tuple(missed[40, 20]) == color_for(GALLERY_STYLE["missed"])
