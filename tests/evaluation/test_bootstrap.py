"""Bootstrap intervals of AP / AP50, and the fast AP behind them against CocoEvaluator."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.evaluation import CocoEvaluator
from detforge.evaluation.bootstrap import WeightedAP, _resample_counts, bootstrap_ap, bootstrap_from_matches
from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, match_detections
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections
from evaluation._reference import ReferenceWeightedAP

Data = tuple[list[ImageRecord], list[Annotation], Categories, dict[int, Detections]]


def _synthetic(num_images: int, seed: int, *, crowd: bool = False, classes: int = 3) -> Data:
    """A noisy detector on random boxes: jittered hits (some mislabelled, some duplicated), misses and
    false positives; true positives tend to score higher."""
    rng = np.random.default_rng(seed)
    cats = Categories.from_names([f"class{i}" for i in range(classes)], first_id=10)
    images: list[ImageRecord] = []
    anns: list[Annotation] = []
    preds: dict[int, Detections] = {}
    for image_id in range(1, num_images + 1):
        images.append(ImageRecord(image_id, f"{image_id}.jpg", Path(f"{image_id}.jpg"), 320, 240))
        boxes, labels, scores = [], [], []
        for _ in range(rng.integers(0, 6)):
            x, y, w, h = rng.uniform(0, 250), rng.uniform(0, 180), rng.uniform(8, 70), rng.uniform(8, 60)
            label = int(rng.integers(0, classes))
            is_crowd = bool(crowd and rng.random() < 0.1)
            anns.append(Annotation(len(anns) + 1, image_id, 10 + label, (x, y, x + w, y + h), iscrowd=is_crowd))
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                jx, jy, jw, jh = rng.normal(0, 0.12, 4) * (w, h, w, h)
                boxes.append((x + jx, y + jy, x + w + jw, y + h + jh))
                labels.append(label if rng.random() < 0.85 else int(rng.integers(0, classes)))
                scores.append(rng.beta(5, 2))
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 250), rng.uniform(0, 180)
            boxes.append((x, y, x + rng.uniform(8, 70), y + rng.uniform(8, 60)))
            labels.append(int(rng.integers(0, classes)))
            scores.append(rng.beta(2, 5))
        order = np.argsort(-np.asarray(scores), kind="stable")
        preds[image_id] = Detections(
            torch.tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order]),
            torch.tensor(np.asarray(labels, dtype=np.int64)[order]),
            torch.tensor(np.asarray(scores, dtype=np.float32)[order]),
            (240, 320),
        )
    return images, anns, cats, preds


def _coco(data: Data):  # type: ignore[no-untyped-def]
    images, anns, cats, preds = data
    evaluator = CocoEvaluator(images, anns, cats)
    evaluator.process([im.id for im in images], [preds[im.id] for im in images])
    return evaluator.evaluate()


@pytest.mark.parametrize("crowd", [False, True], ids=["plain", "with-crowd"])
def test_fast_ap_equals_coco_evaluator(crowd: bool) -> None:
    data = _synthetic(120, seed=3, crowd=crowd)
    metrics = _coco(data)
    matches = match_detections(*data, iou_thresholds=COCO_IOU_THRESHOLDS)
    fast = WeightedAP(matches)
    ap, ap50 = fast(np.ones(len(data[0])))
    assert 0.1 < metrics.ap < 0.9 and metrics.ap50 > 0.4  # a meaningful case, not all zeros
    assert ap == pytest.approx(metrics.ap, abs=1e-6)
    assert ap50 == pytest.approx(metrics.ap50, abs=1e-6)
    per_class, _ = fast.per_class(np.ones(len(data[0])))
    for k, name in enumerate(data[2].names):
        assert per_class[:, k].mean() == pytest.approx(metrics.per_class_ap[name], abs=1e-6)
        assert matches.per_class(0.5)[k].ap() == pytest.approx(per_class[0, k], abs=1e-12)


@pytest.mark.parametrize("crowd", [False, True], ids=["plain", "with-crowd"])
def test_vectorised_weighted_ap_equals_the_first_one_bit_for_bit(crowd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bootstrap looks only at true positives and spreads resamples over threads; for a fixed seed its
    # resamples must score exactly (==, not approx) as the first, one-resample-at-a-time version did.
    from detforge.evaluation import bootstrap

    monkeypatch.setattr(bootstrap, "_usable_cpus", lambda: 3)  # three blocks of resamples, the last one shorter
    matches = match_detections(*_synthetic(150, seed=4, crowd=crowd), iou_thresholds=COCO_IOU_THRESHOLDS)
    reference, fast = ReferenceWeightedAP(matches), WeightedAP(matches)
    counts = _resample_counts(np.random.default_rng(11), 40, len(matches.image_ids))
    counts[0] = 0.0  # a resample without any ground truth
    counts[1, :] = 0.0
    counts[1, 0] = 3.0  # one image only, three times
    expected = np.array([reference(c) for c in counts])
    assert np.array_equal(fast.many(counts), expected)
    halves = counts * 0.5  # weights that are not counts: summed as floats, recall thresholds found by comparison
    assert np.array_equal(fast.many(halves), np.array([reference(c) for c in halves]))
    for c in counts[1:6]:
        for got, want in zip(fast.per_class(c), reference.per_class(c), strict=True):
            assert np.array_equal(got, want)
    ci = bootstrap_from_matches(matches, n=40, seed=11)
    samples = np.array([reference(c) for c in _resample_counts(np.random.default_rng(11), 40, len(matches.image_ids))])
    lo, hi = np.nanquantile(np.where(samples < 0, np.nan, samples), [0.025, 0.975], axis=0)
    assert (ci.ap_low, ci.ap_high, ci.ap50_low, ci.ap50_high) == (lo[0], hi[0], lo[1], hi[1])


def test_weights_equal_duplicated_images() -> None:
    images, anns, cats, preds = _synthetic(12, seed=5)
    twice = [3, 7]  # evaluate images 3 and 7 a second time under new ids
    extra_images = [ImageRecord(100 + i, "x.jpg", Path("x.jpg"), 320, 240) for i in twice]
    extra_anns = [Annotation(1000 + a.id, 100 + a.image_id, a.category_id, a.bbox) for a in anns if a.image_id in twice]
    extra_preds = {100 + i: preds[i] for i in twice}
    dup = (images + extra_images, anns + extra_anns, cats, preds | extra_preds)
    weights = np.ones(len(images))
    weights[[2, 6]] = 2.0  # image ids 3 and 7 are at indices 2 and 6
    fast = WeightedAP(match_detections(images, anns, cats, preds, iou_thresholds=COCO_IOU_THRESHOLDS))
    metrics = _coco(dup)
    ap, ap50 = fast(weights)
    assert (ap, ap50) == (pytest.approx(metrics.ap, abs=1e-6), pytest.approx(metrics.ap50, abs=1e-6))


def test_interval_contains_the_estimate_and_shrinks_with_more_images() -> None:
    small = bootstrap_ap(*_synthetic(30, seed=1), n=200, seed=0)
    large = bootstrap_ap(*_synthetic(300, seed=1), n=200, seed=0)
    for ci in (small, large):
        assert ci.ap_low <= ci.ap <= ci.ap_high
        assert ci.ap50_low <= ci.ap50 <= ci.ap50_high
        assert ci.ap_low < ci.ap_high and ci.n == 200 and ci.confidence == 0.95
    assert (large.ap_high - large.ap_low) < 0.6 * (small.ap_high - small.ap_low)
    assert (large.ap50_high - large.ap50_low) < 0.6 * (small.ap50_high - small.ap50_low)
    assert large.to_dict()["ap_ci"] == [large.ap_low, large.ap_high]


def test_same_seed_same_interval_and_it_is_fast() -> None:
    data = _synthetic(300, seed=2)
    matches = match_detections(*data, iou_thresholds=COCO_IOU_THRESHOLDS)
    start = time.perf_counter()
    first = bootstrap_from_matches(matches, n=200, seed=7)
    elapsed = time.perf_counter() - start
    assert first == bootstrap_from_matches(matches, n=200, seed=7)
    assert first != bootstrap_from_matches(matches, n=200, seed=8)
    assert elapsed < 5.0, f"200 resamples of 300 images took {elapsed:.1f} s"


def test_no_ground_truth_gives_minus_one() -> None:
    images, _, cats, preds = _synthetic(5, seed=0)
    ci = bootstrap_ap(images, [], cats, preds, n=10)
    assert (ci.ap, ci.ap_low, ci.ap_high, ci.ap50) == (-1.0, -1.0, -1.0, -1.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ap(images, [], cats, preds, confidence=1.5)
