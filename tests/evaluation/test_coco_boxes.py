"""The numpy COCO box evaluation gives pycocotools' numbers bit for bit, edge cases included."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detforge.evaluation.coco_boxes import BoxColumns, coco_box_evaluation

CATEGORY_IDS = (7, 2, 5)  # not sorted: pycocotools orders classes by id


def _case(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Ground truth with crowd regions, areas exactly on the small/medium/large bounds and areas that are not
    the box's, and detections with tied scores, exact duplicates (tied IoUs), more than 100 in an image,
    a class without ground truth, images without either."""
    rng = np.random.default_rng(seed)
    n_images = 12
    gts: list[dict[str, Any]] = []
    for image in range(1, n_images - 1):
        for _ in range(int(rng.integers(0, 9))):
            side = float(rng.choice([8.0, 32.0, 40.0, 96.0, 150.0]))
            w, h = side, side * float(rng.choice([1.0, 0.5, 1.5]))
            x, y = float(rng.uniform(0, 300)), float(rng.uniform(0, 200))
            area = w * h if rng.random() < 0.7 else float(rng.choice([32.0**2, 96.0**2, w * h * 0.8]))
            crowd = int(rng.random() < 0.1)
            cat = int(rng.choice(CATEGORY_IDS[:2]))  # class 5 never has ground truth
            gts.append({"id": len(gts) + 1, "image_id": image, "category_id": cat, "bbox": [x, y, w, h],
                        "area": area, "iscrowd": crowd})  # fmt: skip
    dets: list[dict[str, Any]] = []
    for image in range(1, n_images):
        own = [g for g in gts if g["image_id"] == image]
        n_random = 130 if image == 3 else int(rng.integers(0, 12))
        for g in own:
            for _ in range(int(rng.integers(0, 4))):
                x, y, w, h = (float(v) for v in np.asarray(g["bbox"]) + rng.normal(0, 0.15 * g["bbox"][2], 4))
                cat = g["category_id"] if rng.random() < 0.8 else int(rng.choice(CATEGORY_IDS))
                dets.append({"image_id": image, "category_id": cat, "bbox": [x, y, abs(w), abs(h)],
                             "score": float(rng.choice([0.5, 0.9, rng.random()]))})  # fmt: skip
            if rng.random() < 0.3:  # an exact copy of the box: IoU 1, tied with the next copy
                dets.append({"image_id": image, "category_id": g["category_id"], "bbox": list(g["bbox"]),
                             "score": 0.75})  # fmt: skip
        for _ in range(n_random):
            x, y = float(rng.uniform(0, 300)), float(rng.uniform(0, 200))
            w, h = float(rng.uniform(2, 120)), float(rng.uniform(2, 120))
            dets.append({"image_id": image, "category_id": int(rng.choice(CATEGORY_IDS)), "bbox": [x, y, w, h],
                         "score": float(rng.choice([0.5, rng.random()]))})  # fmt: skip
    return gts, dets, n_images


def _pycocotools(gts: list[dict[str, Any]], dets: list[dict[str, Any]], n_images: int) -> COCOeval:
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "width": 400, "height": 300} for i in range(1, n_images + 1)],
        "categories": [{"id": c, "name": str(c)} for c in CATEGORY_IDS],
        "annotations": [dict(g) for g in gts],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes([dict(d) for d in dets]), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def _columns(gts: list[dict[str, Any]], dets: list[dict[str, Any]]) -> tuple[BoxColumns, BoxColumns]:
    index = {c: k for k, c in enumerate(CATEGORY_IDS)}
    g_xywh = np.asarray([g["bbox"] for g in gts], dtype=np.float64).reshape(-1, 4)
    d_xywh = np.asarray([d["bbox"] for d in dets], dtype=np.float64).reshape(-1, 4)
    ground_truth = BoxColumns(
        np.asarray([g["image_id"] - 1 for g in gts], dtype=np.int64),
        np.asarray([index[g["category_id"]] for g in gts], dtype=np.int64),
        g_xywh,
        np.asarray([g["area"] for g in gts], dtype=np.float64),
        np.asarray([bool(g["iscrowd"]) for g in gts]),
        np.zeros(len(gts)),
    )
    detections = BoxColumns(
        np.asarray([d["image_id"] - 1 for d in dets], dtype=np.int64),
        np.asarray([index[d["category_id"]] for d in dets], dtype=np.int64),
        d_xywh,
        d_xywh[:, 2] * d_xywh[:, 3],
        np.zeros(len(dets), dtype=bool),
        np.asarray([d["score"] for d in dets], dtype=np.float64),
    )
    return ground_truth, detections


@pytest.mark.parametrize(("seed", "pairs_at_once"), [(0, 1 << 16), (1, 1 << 16), (2, 1 << 16), (3, 1 << 16), (0, 7)])
def test_stats_and_per_class_ap_are_pycocotools_bit_for_bit(
    seed: int, pairs_at_once: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detforge.evaluation import coco_boxes

    monkeypatch.setattr(coco_boxes, "_PAIRS_AT_ONCE", pairs_at_once)  # 7: IoUs in many small blocks
    gts, dets, n_images = _case(seed)
    reference = _pycocotools(gts, dets, n_images)
    got = coco_box_evaluation(*_columns(gts, dets), CATEGORY_IDS)

    assert list(got.stats) == [float(v) for v in reference.stats]  # exactly, not approximately
    assert got.stats[0] > 0.05 and got.stats[3] != -1 and got.stats[5] != -1  # a real case, all sizes present
    precision = reference.eval["precision"]
    for k, category_id in enumerate(reference.params.catIds):
        values = precision[:, :, k, 0, -1]
        expected = float(values[values > -1].mean()) if (values > -1).any() else -1.0
        assert got.per_class_ap[CATEGORY_IDS.index(category_id)] == expected
    assert got.per_class_ap[CATEGORY_IDS.index(5)] == -1.0  # no ground truth: undefined, as COCO says


def test_no_detections_and_no_ground_truth() -> None:
    gts, dets, _ = _case(0)
    ground_truth, detections = _columns(gts, dets)
    nothing = BoxColumns(*(getattr(detections, f)[:0] for f in ("image", "label", "xywh", "area", "crowd", "score")))
    got = coco_box_evaluation(ground_truth, nothing, CATEGORY_IDS)
    assert got.stats == (0.0,) * 12  # every size has ground truth: nothing found, not undefined
    no_gt = BoxColumns(*(getattr(ground_truth, f)[:0] for f in ("image", "label", "xywh", "area", "crowd", "score")))
    assert coco_box_evaluation(no_gt, detections, CATEGORY_IDS).stats == (-1.0,) * 12
