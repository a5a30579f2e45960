"""`detforge eval --detections RESULTS.json DATA`: pycocotools' numbers exactly, without importing torch;
and the detection table that carries results files through evaluation."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.errors import DatasetError
from detforge.evaluation import STAT_NAMES, DetectionTable, evaluate_predictions, read_coco_results
from detforge.structures import Annotation, Categories, Category, ImageRecord
from detforge.structures.detections import Detections


def _write_case(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A COCO dataset folder (test.json, no image files needed) and a results file with ties and crowd."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 320, "height": 240} for i in range(1, 31)]
    anns, results = [], []
    for im in images:
        for _ in range(int(rng.integers(1, 6))):
            w, h = (float(v) for v in np.round(rng.uniform(6, 140, 2), 2))
            x, y = float(np.round(rng.uniform(0, 320 - w), 2)), float(np.round(rng.uniform(0, 240 - h), 2))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": int(rng.choice([1, 4])),
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.05)})  # fmt: skip
            for _ in range(3):
                box = [float(v) for v in np.asarray([x, y, w, h]) + rng.normal(0, 0.1 * w, 4)]
                box[2], box[3] = abs(box[2]), abs(box[3])
                results.append({"image_id": im["id"], "category_id": int(rng.choice([1, 4])), "bbox": box,
                                "score": float(rng.choice([0.5, rng.random()]))})  # fmt: skip
    data = root / "data"
    data.mkdir()
    categories = [{"id": 1, "name": "cat"}, {"id": 4, "name": "dog"}]
    gt = {"images": images, "annotations": anns, "categories": categories}
    (data / "test.json").write_text(json.dumps(gt), encoding="utf-8")
    (root / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return data, root / "results.json"


def _pycocotools(data: Path, results: Path) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(data / "test.json"))
        e = COCOeval(gt, gt.loadRes(str(results)), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats[:12]]


def test_eval_of_a_results_file_equals_pycocotools_and_never_imports_torch(tmp_path: Path) -> None:
    data, results = _write_case(tmp_path)
    script = (
        "import json, sys\n"
        "from detforge.cli import main\n"
        f"status = main(['eval', '--detections', {str(results)!r}, {str(data)!r}, '--json', '--no-progress'])\n"
        "print(json.dumps({'status': status, 'torch': 'torch' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    report, tail = done.stdout.rsplit("\n", 2)[0], json.loads(done.stdout.strip().splitlines()[-1])
    assert tail == {"status": 0, "torch": False}
    metrics = json.loads(report)["metrics"]
    assert [metrics[name] for name in STAT_NAMES] == _pycocotools(data, results)  # exactly


def test_the_table_carries_what_the_results_file_says(tmp_path: Path) -> None:
    data, results = _write_case(tmp_path, seed=1)
    gt = json.loads((data / "test.json").read_text(encoding="utf-8"))
    images = [ImageRecord(im["id"], im["file_name"], Path(im["file_name"]), 320, 240) for im in gt["images"]]
    cats = Categories((Category(1, "cat"), Category(4, "dog")))
    table = read_coco_results(results, images, cats)
    entries = json.loads(results.read_text(encoding="utf-8"))
    assert len(table) == len(entries)
    # Grouped by image, each image by descending score; boxes exactly as written (XYWH float64).
    assert (np.diff(table.image_ids) >= 0).all()
    for image_id in np.unique(table.image_ids):
        assert (np.diff(table.scores[table.image_ids == image_id]) <= 0).all()
    first = max((e for e in entries if e["image_id"] == int(table.image_ids[0])), key=lambda e: e["score"])
    assert table.xywh[0].tolist() == first["bbox"] and table.labels[0] == [1, 4].index(first["category_id"])

    bad = [*entries[:5], dict(entries[5], bbox=[1, 2, -3, 4])]
    results.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(
        DatasetError, match=r"results\.json\[5\]: 'bbox' \[1, 2, -3, 4\] is not \[x, y, width, height\]"
    ):
        read_coco_results(results, images, cats)


def test_model_detections_and_a_table_evaluate_alike() -> None:
    images = [ImageRecord(i, f"{i}.jpg", Path(f"{i}.jpg"), 100, 80) for i in (3, 1)]
    cats = Categories((Category(1, "a"), Category(2, "b")))
    anns = [Annotation(1, 1, 1, (10.0, 10.0, 50.0, 40.0)), Annotation(2, 3, 2, (5.0, 5.0, 30.0, 70.0))]
    preds = {
        1: Detections(torch.tensor([[11.0, 9.0, 50.0, 41.0], [0.0, 0.0, 9.0, 9.0]]), torch.tensor([0, 1]),
                      torch.tensor([0.9, 0.4]), (80, 100)),
        3: Detections(torch.tensor([[5.0, 6.0, 31.0, 70.0]]), torch.tensor([1]), torch.tensor([0.7]), (80, 100)),
    }  # fmt: skip
    table = DetectionTable.from_detections(preds)
    assert table.image_ids.tolist() == [1, 1, 3] and table.labels.tolist() == [0, 1, 1]
    back = table.to_detections(images)
    assert set(back) == {1, 3} and torch.equal(back[1].boxes, preds[1].boxes)
    a = evaluate_predictions(images, anns, cats, preds, bootstrap_n=20)
    b = evaluate_predictions(images, anns, cats, table, bootstrap_n=20)
    assert a.metrics == b.metrics and a.to_dict() == b.to_dict()
    assert a.metrics.ap50 == pytest.approx(1.0)  # both images found (COCO's eps keeps it a hair below 1)


def test_the_collector_is_paused_only_inside_the_block() -> None:
    import gc

    from detforge.evaluation.gc_pause import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("inside")
    assert gc.isenabled()
