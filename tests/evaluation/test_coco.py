"""CocoEvaluator gives pycocotools' numbers exactly, on bbox and segm, with crowd regions and empty images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as pc_mask
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from detforge.errors import DatasetError
from detforge.evaluation import STAT_NAMES, CocoEvaluator, CocoMetrics
from detforge.structures import RLE, Annotation, Categories, ImageRecord, Polygons
from detforge.structures.detections import Detections

H, W = 120, 160
CATEGORIES = Categories.from_names(["cat", "dog", "bird"], first_id=3)  # ids 3, 4, 5: not 0..K-1


def _rect_mask(box: tuple[float, float, float, float]) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.uint8)
    x0, y0, x1, y1 = (round(v) for v in box)
    m[y0:y1, x0:x1] = 1
    return m


def _random_case(seed: int) -> tuple[list[ImageRecord], list[Annotation], list[int], list[Detections]]:
    """Ground truth with small/medium/large objects, crowd regions (RLE), an image without objects,
    and detections: jittered hits, wrong classes, false positives, an image with 120 detections,
    an image with objects but no detections."""
    rng = np.random.default_rng(seed)
    images = [ImageRecord(100 + i, f"{i}.jpg", Path(f"{i}.jpg"), W, H) for i in range(10)]
    annotations: list[Annotation] = []
    for im in images[:8]:
        for _ in range(int(rng.integers(1, 6))):
            side = float(rng.choice([12.0, 50.0, 105.0]) * rng.uniform(0.8, 1.1))
            w, h = side * rng.uniform(0.8, 1.2), side * rng.uniform(0.8, 1.0)
            x0, y0 = rng.uniform(0, W - w - 1), rng.uniform(0, H - h - 1)
            crowd = bool(rng.random() < 0.15)
            points = (x0, y0, x0 + w, y0 + 0.5, x0 + w - 0.5, y0 + h, x0 + 1.0, y0 + h - 1.0)
            poly = Polygons((tuple(float(v) for v in points),))
            seg: Polygons | RLE = poly
            if crowd:
                counts = pc_mask.encode(np.asfortranarray(_rect_mask(poly.bbox())))["counts"].decode()
                seg = RLE(counts, (H, W))
            category = int(rng.choice(CATEGORIES.ids))
            annotations.append(Annotation(len(annotations), im.id, category, poly.bbox(), seg, crowd))
    image_ids = [im.id for im in images]
    detections: list[Detections] = []
    for im in images:
        rows: list[tuple[float, float, float, float, int]] = []
        if im.id != images[1].id:  # image 1 has objects but no detections
            for ann in (a for a in annotations if a.image_id == im.id):
                if rng.random() < 0.8:
                    jitter = rng.normal(0, 0.08 * ann.box_width, 4)
                    label = CATEGORIES.index_of_id(ann.category_id) if rng.random() < 0.85 else int(rng.integers(0, 3))
                    x0, y0, x1, y1 = np.asarray(ann.bbox) + jitter
                    rows.append((max(x0, 0), max(y0, 0), min(x1, W), min(y1, H), label))
            n_false = 120 if im.id == images[2].id else int(rng.integers(0, 4))
            for _ in range(n_false):
                x0, y0 = rng.uniform(0, W - 30), rng.uniform(0, H - 30)
                rows.append((x0, y0, x0 + rng.uniform(3, 30), y0 + rng.uniform(3, 30), int(rng.integers(0, 3))))
        boxes = torch.tensor([r[:4] for r in rows], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([r[4] for r in rows], dtype=torch.int64)
        scores = torch.tensor(rng.uniform(0.05, 1.0, len(rows)), dtype=torch.float32)
        masks = torch.zeros((len(rows), H, W), dtype=torch.uint8)
        for j, box in enumerate(boxes.tolist()):
            masks[j] = torch.from_numpy(_rect_mask(tuple(box)))
        detections.append(Detections(boxes, labels, scores, (H, W), masks.bool()))
    return images, annotations, image_ids, detections


def _pycocotools(
    images: list[ImageRecord],
    annotations: list[Annotation],
    image_ids: list[int],
    detections: list[Detections],
    iou: str,
) -> PyCOCOeval:
    gt_anns = []
    for i, a in enumerate(annotations):
        if isinstance(a.segmentation, Polygons):
            seg: object = [list(p) for p in a.segmentation.points]
            rle = pc_mask.merge(pc_mask.frPyObjects(seg, H, W))
        else:
            assert isinstance(a.segmentation, RLE) and isinstance(a.segmentation.counts, str)
            seg = {"counts": a.segmentation.counts, "size": [H, W]}
            rle = {"counts": a.segmentation.counts.encode(), "size": [H, W]}
        x0, y0, x1, y1 = a.bbox
        gt_anns.append(
            {
                "id": i + 1,
                "image_id": a.image_id,
                "category_id": a.category_id,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": int(a.iscrowd),
                "segmentation": seg,
                "area": float(pc_mask.area(rle)),
            }
        )
    gt = PyCOCO()
    gt.dataset = {
        "images": [{"id": im.id, "width": W, "height": H} for im in images],
        "categories": [{"id": c.id, "name": c.name} for c in CATEGORIES],
        "annotations": gt_anns,
    }
    gt.createIndex()
    results = []
    for image_id, det in zip(image_ids, detections, strict=True):
        for j in range(len(det)):
            r: dict[str, object] = {
                "image_id": image_id,
                "category_id": CATEGORIES.items[int(det.labels[j])].id,
                "score": float(det.scores[j]),
            }
            if iou == "bbox":
                x0, y0, x1, y1 = (float(v) for v in det.boxes[j])
                r["bbox"] = [x0, y0, x1 - x0, y1 - y0]
            else:
                assert det.masks is not None
                r["segmentation"] = pc_mask.encode(np.asfortranarray(det.masks[j].numpy().astype(np.uint8)))
            results.append(r)
    coco_eval = PyCOCOeval(gt, gt.loadRes(results), iou)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_stats_equal_pycocotools(iou_type: str, seed: int) -> None:
    images, annotations, image_ids, detections = _random_case(seed)
    evaluator = CocoEvaluator(images, annotations, CATEGORIES, iou_type=iou_type)  # type: ignore[arg-type]
    evaluator.process(image_ids[:5], detections[:5])
    evaluator.process(image_ids[5:], detections[5:])
    metrics = evaluator.evaluate()
    reference = _pycocotools(images, annotations, image_ids, detections, iou_type)

    np.testing.assert_allclose(metrics.stats, reference.stats, atol=1e-6, rtol=0)
    assert metrics.ap > 0.05 and metrics.ap50 > 0.1 and metrics.ap_large != -1  # a real, non-trivial case
    assert metrics.num_images == 10
    assert metrics.num_detections == sum(len(d) for d in detections)
    precision = reference.eval["precision"]
    for k, category_id in enumerate(reference.params.catIds):
        values = precision[:, :, k, 0, -1]
        expected = float(values[values > -1].mean()) if (values > -1).any() else -1.0
        assert metrics.per_class_ap[CATEGORIES.by_id(category_id).name] == pytest.approx(expected, abs=1e-6)


def test_evaluate_is_repeatable_and_reset_forgets() -> None:
    images, annotations, image_ids, detections = _random_case(2)
    evaluator = CocoEvaluator(images, annotations, CATEGORIES)
    evaluator.process(image_ids, detections)
    first = evaluator.evaluate()
    assert evaluator.evaluate().stats == first.stats
    evaluator.reset()
    evaluator.process(image_ids, detections)
    assert evaluator.evaluate().stats == first.stats


def test_no_detections_gives_zeros_not_an_error() -> None:
    images, annotations, image_ids, _ = _random_case(3)
    evaluator = CocoEvaluator(images, annotations, CATEGORIES)
    evaluator.process(image_ids, [Detections.empty((H, W)) for _ in image_ids])
    metrics = evaluator.evaluate()
    assert metrics.ap == 0.0 and metrics.ap50 == 0.0 and metrics.ar100 == 0.0
    assert metrics.num_detections == 0
    assert all(v in (0.0, -1.0) for v in metrics.stats)
    assert set(metrics.per_class_ap) <= {"cat", "dog", "bird"}


def test_unprocessed_images_count_as_misses(caplog: pytest.LogCaptureFixture) -> None:
    images, annotations, image_ids, detections = _random_case(0)
    full = CocoEvaluator(images, annotations, CATEGORIES)
    full.process(image_ids, detections)
    partial = CocoEvaluator(images, annotations, CATEGORIES)
    partial.process(image_ids[:1], detections[:1])
    with caplog.at_level("WARNING"):
        metrics = partial.evaluate()
    assert "9 of 10 images were never processed" in caplog.text
    assert metrics.ar100 < full.evaluate().ar100


def test_boxes_are_converted_from_xyxy_and_labels_mapped_to_ids() -> None:
    images = [ImageRecord(7, "a.jpg", Path("a.jpg"), W, H)]
    annotations = [Annotation(0, 7, 5, (10.0, 20.0, 60.0, 90.0))]  # category id 5 = index 2 ("bird")
    evaluator = CocoEvaluator(images, annotations, CATEGORIES)
    hit = Detections(torch.tensor([[10.0, 20.0, 60.0, 90.0]]), torch.tensor([2]), torch.tensor([0.9]), (H, W))
    evaluator.process([7], [hit])
    metrics = evaluator.evaluate()
    assert metrics.ap == pytest.approx(1.0) and metrics.per_class_ap["bird"] == pytest.approx(1.0)
    assert metrics.per_class_ap["cat"] == -1.0  # no ground truth for that class
    evaluator.reset()
    wrong_class = Detections(torch.tensor([[10.0, 20.0, 60.0, 90.0]]), torch.tensor([0]), torch.tensor([0.9]), (H, W))
    evaluator.process([7], [wrong_class])
    assert evaluator.evaluate().ap == 0.0


def test_misuse_is_reported() -> None:
    images = [ImageRecord(7, "a.jpg", Path("a.jpg"), W, H)]
    evaluator = CocoEvaluator(images, [], CATEGORIES)
    det = Detections(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([3]), torch.tensor([0.5]), (H, W))
    with pytest.raises(ValueError, match=r"label 3 is outside 0\.\.2"):
        evaluator.process([7], [det])
    with pytest.raises(ValueError, match="image id 8 is not in the evaluation set"):
        evaluator.process([8], [Detections.empty((H, W))])
    with pytest.raises(ValueError, match=r"detections are for a \(60, 80\) .* image but the image is \(120, 160\)"):
        evaluator.process([7], [Detections.empty((60, 80))])
    evaluator.process([7], [Detections.empty((H, W))])
    with pytest.raises(ValueError, match="already processed"):
        evaluator.process([7], [Detections.empty((H, W))])
    segm = CocoEvaluator(images, [], CATEGORIES, iou_type="segm")
    unknown_size = ImageRecord(8, "b.jpg", Path("b.jpg"), 0, 0)
    polygon = Annotation(1, 8, 3, (1.0, 1.0, 5.0, 5.0), Polygons(((1.0, 1.0, 5.0, 1.0, 5.0, 5.0),)))
    with pytest.raises(DatasetError, match="annotation 1 of image 8: polygon mask on an image of unknown size"):
        CocoEvaluator([unknown_size], [polygon], CATEGORIES, iou_type="segm")
    assert CocoEvaluator([unknown_size], [polygon], CATEGORIES).evaluate().ap == 0.0  # boxes need no image size
    boxes_only = Detections(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([0]), torch.tensor([0.5]), (H, W))
    with pytest.raises(ValueError, match=r"needs Detections\.masks"):
        segm.process([7], [boxes_only])


def test_metrics_value_object() -> None:
    stats = [0.5, 0.7, 0.4, -1.0, 0.3, 0.6, 0.2, 0.5, 0.55, -1.0, 0.4, 0.7]
    metrics = CocoMetrics.from_stats(stats, {"cat": 0.5}, num_images=3, num_detections=9)
    assert metrics.stats == tuple(stats)
    as_dict = metrics.to_dict()
    assert [as_dict[name] for name in STAT_NAMES] == stats
    assert as_dict["per_class_ap"] == {"cat": 0.5} and as_dict["num_images"] == 3
    with pytest.raises(ValueError, match="ap50"):
        CocoMetrics.from_stats([0.5, 1.5, *stats[2:]], {}, num_images=1, num_detections=0)
