"""Confidence intervals for AP and AP50 by resampling images (bootstrap, percentile method).

Detections are matched once at COCO's ten IoU thresholds; each resample only re-weights them (an
image drawn w times counts w times: its detections' true/false positives and its ground truth), and
COCO's 101-point AP is recomputed with numpy for all classes and thresholds at once. Re-weighting is
exactly equivalent to evaluating w copies of the image (ties between copies do not change COCO's
interpolated precision), so with all weights 1 the AP equals COCO's on data without area-range or
crowd subtleties (see `detforge.evaluation.matching`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detforge.evaluation.matching import COCO_IOU_THRESHOLDS, RECALL_THRESHOLDS, Matches, match_detections
from detforge.structures import Annotation, Categories, ImageRecord

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["BootstrapCI", "WeightedAP", "bootstrap_ap", "bootstrap_from_matches"]

_EPS = float(np.spacing(1))
_NUM_REC = len(RECALL_THRESHOLDS)
_MAX_THREADS = 4  # resample chunks in flight at once (each holds a few arrays of chunk x detections)


def _usable_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    `many(weights [B, I])` gives the same for B weightings at once, [B, 2].

    Only true positives are looked at per weighting: a false positive never sets an interpolated
    precision (the true positive before it, or zero, is at the same recall with a higher precision), it
    only enters the detection counts, which are one running sum over all detections. Every sum is an
    integer count, so the numbers are exact and equal those of re-evaluating the duplicated images.
    """

    def __init__(self, matches: Matches) -> None:
        self._t50 = matches.threshold_index(0.5)
        k = matches.num_classes
        self._k = k
        # Sort detections by class, then descending score (stable: image order, then within-image order).
        order = np.lexsort((-matches.det_scores, matches.det_labels))
        labels, ignored = matches.det_labels[order], matches.det_ignored[:, order]
        tp = (matches.det_gt[:, order] >= 0) & ~ignored  # [T, M]
        self._num_t = tp.shape[0]
        self._img = matches.det_image[order]
        self._counted = (~ignored).astype(np.float64) if ignored.any() else None  # None: every detection counts
        # The true positives of all thresholds, flattened: by threshold, then class, then descending score.
        t_of, pos = np.nonzero(tp)
        cls = labels[pos]
        self._t_of, self._pos, self._cls, self._tp_img = t_of, pos, cls, self._img[pos]
        self._seg = t_of * k + cls  # segment (threshold, class): non-decreasing
        seg_start = np.searchsorted(self._seg, np.arange(self._num_t * k), side="left")
        self._before_seg = seg_start[self._seg] - 1  # last entry of the previous segments (-1: none)
        class_start = np.searchsorted(labels, np.arange(k), side="left")
        self._before_class = class_start[cls] - 1  # last detection of the previous classes (-1: none)
        self._t_bounds = np.searchsorted(t_of, np.arange(self._num_t + 1), side="left")
        num_images = len(matches.image_ids)
        keep = ~matches.gt_crowd
        self._gt_counts = np.zeros((num_images, k), dtype=np.float64)
        np.add.at(self._gt_counts, (matches.gt_image[keep], matches.gt_labels[keep]), 1.0)
        self._per_image = np.bincount(self._img, minlength=num_images).astype(np.float64)  # detections per image
        self._offset = 2.0 * (k - np.arange(k))  # the rounding of earlier releases, kept for identical numbers
        self._chunk = max(1, 4_000_000 // max(1, len(self._img) * (1 if self._counted is None else 2)))

    @staticmethod
    def _within(running: np.ndarray, at: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Running sums [B, N] (a zero column first) at `at`, restarted after `before` (-1: from the start)."""
        return (running[:, at + 1] - running[:, before + 1]).astype(np.float64)

    @staticmethod
    def _running(values: np.ndarray, dtype: type) -> np.ndarray:
        out = np.zeros((values.shape[0], values.shape[1] + 1), dtype=dtype)
        np.cumsum(values, axis=1, dtype=dtype, out=out[:, 1:])
        return out

    def _counted_at_tps(self, w_det: np.ndarray, dtype: type) -> np.ndarray:
        """[B, P] weighted count of the detections (true or false positives) of each true positive's class up
        to and including it."""
        if self._counted is None:
            return self._within(self._running(w_det, dtype), self._pos, self._before_class)
        out = np.empty((w_det.shape[0], len(self._pos)))
        for t in range(self._num_t):
            a, b = self._t_bounds[t], self._t_bounds[t + 1]
            if a < b:
                running = self._running(w_det * self._counted[t].astype(w_det.dtype), dtype)
                out[:, a:b] = self._within(running, self._pos[a:b], self._before_class[a:b])
        return out

    def per_class_many(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP [B, T, K] with -1 for classes without weighted ground truth, weighted num_gt [B, K]) of B
        weightings [B, I]."""
        weights = np.asarray(weights, dtype=np.float64).reshape(-1, self._gt_counts.shape[0])
        num_b, num_t, k = weights.shape[0], self._num_t, self._k
        num_gt = weights @ self._gt_counts  # [B, K]
        ap = np.empty((num_b, num_t, k))

        def run(lo: int) -> None:
            ap[lo : lo + self._chunk] = self._ap_chunk(weights[lo : lo + self._chunk], num_gt[lo : lo + self._chunk])

        starts = range(0, num_b, self._chunk)
        workers = min(_usable_cpus(), len(starts), _MAX_THREADS)
        if workers > 1:  # numpy releases the GIL in its loops: chunks run on several cores at once
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, starts))
        else:
            for lo in starts:
                run(lo)
        return np.where(num_gt[:, None, :] > 0, ap, -1.0), num_gt

    def _ap_chunk(self, weights: np.ndarray, num_gt: np.ndarray) -> np.ndarray:
        num_b, num_s = weights.shape[0], self._num_t * self._k
        if len(self._pos) == 0:
            return np.zeros((num_b, self._num_t, self._k))
        # Integer weights whose sums fit int32 are summed as int32 (exact either way, int32 is faster).
        small = np.array_equal(weights, np.round(weights)) and float((weights @ self._per_image).max()) < 2**31
        dtype, w = (np.int32, weights.astype(np.int32)) if small else (np.float64, weights)
        tp_w = w[:, self._tp_img]
        running = self._running(tp_w, dtype)
        tps = (running[:, 1:] - running[:, self._before_seg + 1]).astype(np.float64)  # [B, P], within each segment
        counted = self._counted_at_tps(w[:, self._img], dtype)
        gt_of = num_gt[:, self._cls]
        recall = np.divide(tps, gt_of, out=np.zeros_like(tps), where=gt_of > 0)
        precision = tps / (counted + _EPS)  # tps + fps, exactly: both are sums of integers
        # Number of recall thresholds <= recall: the best precision reaching recall threshold j is the maximum
        # over the true positives whose count exceeds j. Keys (resample, segment, count) are sorted.
        reached = _thresholds_reached(recall)
        keys = ((np.arange(num_b)[:, None] * num_s + self._seg[None, :]) * (_NUM_REC + 1) + reached).ravel()
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        best = np.zeros(num_b * num_s * (_NUM_REC + 1))
        best[keys[starts]] = np.maximum.reduceat(precision.ravel(), starts)
        best = best.reshape(num_b, self._num_t, self._k, _NUM_REC + 1)
        q = np.maximum.accumulate(best[..., ::-1], axis=-1)[..., ::-1][..., 1:]
        off = self._offset[None, None, :, None]
        q = np.ascontiguousarray((q + off) - off)
        return q.mean(axis=-1)

    def per_class(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP [T, K] with -1 for classes without weighted ground truth, weighted num_gt [K])."""
        ap, num_gt = self.per_class_many(np.asarray(weights, dtype=np.float64)[None, :])
        return ap[0], num_gt[0]

    def many(self, weights: np.ndarray) -> np.ndarray:
        """[B, 2] (ap, ap50) of B weightings [B, I]; -1 for a weighting without any ground truth."""
        ap, num_gt = self.per_class_many(weights)
        out = np.full((ap.shape[0], 2), -1.0)
        for b in range(ap.shape[0]):
            has = num_gt[b] > 0
            if has.any():
                out[b] = float(ap[b][:, has].mean()), float(ap[b][self._t50, has].mean())
        return out

    def __call__(self, weights: np.ndarray) -> tuple[float, float]:
        ap, ap50 = self.many(np.asarray(weights, dtype=np.float64)[None, :])[0]
        return float(ap), float(ap50)


_REC = np.asarray(RECALL_THRESHOLDS)


def _thresholds_reached(recall: np.ndarray) -> np.ndarray:
    """How many of `RECALL_THRESHOLDS` are <= each recall in [0, 1] (`searchsorted(..., side="right")`, exactly):
    the index from recall * 100, then one comparison each way to settle rounding at the thresholds."""
    guess = (recall * (_NUM_REC - 1)).astype(np.int32)  # truncation is floor: recall >= 0
    np.minimum(guess, _NUM_REC - 1, out=guess)
    guess -= recall < _REC[guess]
    guess += (recall >= _REC[np.minimum(guess + 1, _NUM_REC - 1)]) & (guess < _NUM_REC - 1)
    guess += 1
    return guess


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
    samples = fast.many(counts)  # [n, 2]
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
