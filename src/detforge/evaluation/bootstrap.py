"""Confidence intervals for AP and AP50 by resampling images (bootstrap, percentile method).

Detections are matched once at COCO's ten IoU thresholds; each resample only re-weights them (an
image drawn w times counts w times: its detections' true/false positives and its ground truth), and
COCO's 101-point AP is recomputed with numpy for all classes and thresholds at once. Re-weighting is
exactly equivalent to evaluating w copies of the image (ties between copies do not change COCO's
interpolated precision), so with all weights 1 the AP equals COCO's on data without area-range or
crowd subtleties (see `detforge.evaluation.matching`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, RECALL_THRESHOLDS, Matches, match_detections
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.detections import Detections

__all__ = ["BootstrapCI", "WeightedAP", "bootstrap_ap", "bootstrap_from_matches"]

_EPS = float(np.spacing(1))
_NUM_REC = len(RECALL_THRESHOLDS)


@dataclass(frozen=True)
class BootstrapCI:
    """Point estimates and percentile bootstrap intervals of AP@[.50:.95] and AP50, all in [0, 1].

    `ap`/`ap50` are the fast (numpy) COCO APs on the full image set (-1 when no class has ground truth,
    and then the bounds are -1 too); `*_low`/`*_high` bound the central `confidence` share of `n`
    resamples of the `num_images` images drawn with replacement using `seed`.
    """

    ap: float
    ap_low: float
    ap_high: float
    ap50: float
    ap50_low: float
    ap50_high: float
    n: int
    confidence: float
    seed: int
    num_images: int

    def to_dict(self) -> dict[str, object]:
        return {
            "ap": self.ap,
            "ap_ci": [self.ap_low, self.ap_high],
            "ap50": self.ap50,
            "ap50_ci": [self.ap50_low, self.ap50_high],
            "n": self.n,
            "confidence": self.confidence,
            "seed": self.seed,
            "num_images": self.num_images,
        }


class WeightedAP:
    """COCO AP (per class, per IoU threshold) of a fixed set of matches under per-image weights.

    Built once from `Matches` (which must hold COCO's ten IoU thresholds for `ap`; `ap50` needs 0.5);
    `__call__(weights)` with weights [I] (copies of each image, in `matches.image_ids` order) returns
    (ap, ap50): means over classes whose weighted ground truth count is > 0, -1 if there is none.
    """

    def __init__(self, matches: Matches) -> None:
        self._t50 = matches.threshold_index(0.5)
        k = matches.num_classes
        self._k = k
        # Sort detections by class, then descending score (stable: image order, then within-image order).
        order = np.lexsort((-matches.det_scores, matches.det_labels))
        labels, ignored = matches.det_labels[order], matches.det_ignored[:, order]
        tp = (matches.det_gt[:, order] >= 0) & ~ignored
        # A class's detections after its last true positive (at any threshold) only add points of lower
        # precision at the final recall, which never set an interpolated precision: leave them out.
        last = np.full(k, -1, dtype=np.int64)
        hits = np.flatnonzero(tp.any(axis=0))
        np.maximum.at(last, labels[hits], hits)
        keep = np.arange(len(labels)) <= last[labels]
        self._cls, self._img = labels[keep], matches.det_image[order][keep]
        self._tp = tp[:, keep].astype(np.float64)
        # Detections counted as true or false positives; None: all of them (no crowd region or odd box).
        self._counted = (~ignored[:, keep]).astype(np.float64) if ignored[:, keep].any() else None
        bounds = np.searchsorted(self._cls, np.arange(k + 1), side="left")
        self._starts, self._ends = bounds[:-1], bounds[1:]
        num_images = len(matches.image_ids)
        keep = ~matches.gt_crowd
        self._gt_counts = np.zeros((num_images, k), dtype=np.float64)
        np.add.at(self._gt_counts, (matches.gt_image[keep], matches.gt_labels[keep]), 1.0)
        self._offset = 2.0 * (k - self._cls)  # keeps running maxima inside each class segment
        num_t = tp.shape[0]
        # Query j of class c at threshold t asks for the first detection whose recall reaches RECALL_THRESHOLDS[j].
        self._row_key = (np.arange(num_t) * (k * (_NUM_REC + 1)))[:, None]
        queries = (np.arange(k)[:, None] * (_NUM_REC + 1) + np.arange(1, _NUM_REC + 1)[None, :]).ravel()
        self._queries = (self._row_key + queries[None, :]).ravel()
        self._query_end = np.tile(np.repeat(self._ends, _NUM_REC), num_t) + np.repeat(
            np.arange(num_t), k * _NUM_REC
        ) * len(self._cls)
        self._num_t = num_t

    def per_class(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP [T, K] with -1 for classes without weighted ground truth, weighted num_gt [K])."""
        num_t, k, m = self._num_t, self._k, len(self._cls)
        num_gt = np.asarray(weights, dtype=np.float64) @ self._gt_counts
        if m == 0:
            ap = np.where(num_gt > 0, 0.0, -1.0)
            return np.broadcast_to(ap, (num_t, k)).copy(), num_gt
        w = np.asarray(weights, dtype=np.float64)[self._img]
        tps = np.cumsum(self._tp * w, axis=1)  # [T, M]
        counted = np.cumsum(w)[None, :] if self._counted is None else np.cumsum(self._counted * w, axis=1)
        # Make the running sums start again at each class: subtract the sum before the class's first detection.
        first = self._starts > 0
        before = np.maximum(self._starts - 1, 0)
        tps -= np.where(first, tps[:, before], 0.0)[:, self._cls]
        counted = counted - np.where(first, counted[:, before], 0.0)[:, self._cls]
        gt_of_det = num_gt[self._cls]
        recall = np.divide(tps, gt_of_det, out=np.zeros_like(tps), where=gt_of_det > 0)
        precision = tps / (counted + _EPS)  # tps + fps, exactly: both are sums of integers
        interp = np.maximum.accumulate((precision + self._offset)[:, ::-1], axis=1)[:, ::-1] - self._offset
        # Number of recall thresholds <= recall: exact integer keys, increasing inside each class segment.
        reached = np.searchsorted(np.asarray(RECALL_THRESHOLDS), recall, side="right")
        keys = (reached + self._cls * (_NUM_REC + 1) + self._row_key).ravel()
        pos = np.searchsorted(keys, self._queries, side="left")
        valid = pos < self._query_end
        q = np.where(valid, interp.ravel()[np.minimum(pos, keys.size - 1)], 0.0)
        ap = q.reshape(num_t, k, _NUM_REC).mean(axis=2)
        return np.where(num_gt[None, :] > 0, ap, -1.0), num_gt

    def __call__(self, weights: np.ndarray) -> tuple[float, float]:
        ap, num_gt = self.per_class(weights)
        has = num_gt > 0
        if not has.any():
            return -1.0, -1.0
        return float(ap[:, has].mean()), float(ap[self._t50, has].mean())


def _resample_counts(rng: np.random.Generator, n: int, num_images: int) -> np.ndarray:
    """[n, I] how many times each image is drawn in each of n resamples of I images with replacement."""
    draws = rng.integers(0, num_images, size=(n, num_images))
    flat = (draws + np.arange(n)[:, None] * num_images).ravel()
    return np.bincount(flat, minlength=n * num_images).reshape(n, num_images).astype(np.float64)


def bootstrap_from_matches(matches: Matches, *, n: int = 200, seed: int = 0, confidence: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap of AP and AP50 from matches at COCO's ten IoU thresholds (see `bootstrap_ap`)."""
    if n < 1:
        raise ValueError(f"bootstrap: n must be >= 1 resamples, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap: confidence must be in (0, 1), got {confidence}")
    for t in COCO_IOU_THRESHOLDS:
        matches.threshold_index(t)
    fast = WeightedAP(matches)
    num_images = len(matches.image_ids)
    ap, ap50 = fast(np.ones(num_images))
    if ap < 0 or num_images == 0:
        return BootstrapCI(ap, ap, ap, ap50, ap50, ap50, n, confidence, seed, num_images)
    counts = _resample_counts(np.random.default_rng(seed), n, num_images)
    samples = np.array([fast(c) for c in counts])  # [n, 2]
    samples[samples < 0] = np.nan  # a resample without any ground truth has no AP
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    return BootstrapCI(
        ap, float(lo[0]), float(hi[0]), ap50, float(lo[1]), float(hi[1]), n, confidence, seed, num_images
    )


def bootstrap_ap(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    n: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapCI:
    """AP@[.50:.95] and AP50 with `confidence` intervals from `n` image resamples (percentile method).

    Deterministic for a given `seed`. A few hundred images x 200 resamples take well under a few seconds.
    """
    matches = match_detections(images, annotations, categories, predictions, iou_thresholds=COCO_IOU_THRESHOLDS)
    return bootstrap_from_matches(matches, n=n, seed=seed, confidence=confidence)
