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
    only enters the detection counts, which are one running sum over the detections up to each class's
    last true positive. Every sum is an integer count (summed in int32 when the weights are counts), so the
    numbers are exact and equal those of re-evaluating the duplicated images. Weightings are evaluated one
    at a time into reused buffers (a few arrays of the size of the true positives: they stay in cache and
    need no fresh memory), in blocks spread over the usable cores.
    """

    def __init__(self, matches: Matches) -> None:
        self._t50 = matches.threshold_index(0.5)
        k = matches.num_classes
        self._k = k
        # Sort detections by class, then descending score (stable: image order, then within-image order).
        order = np.lexsort((-matches.det_scores, matches.det_labels))
        labels, ignored = matches.det_labels[order], matches.det_ignored[:, order]
        tp = (matches.det_gt[:, order] >= 0) & ~ignored  # [T, M]
        # A class's detections after its last true positive (at any threshold) never reach a count looked at.
        last = np.full(k, -1, dtype=np.int64)
        hits = np.flatnonzero(tp.any(axis=0))
        np.maximum.at(last, labels[hits], hits)
        keep = np.flatnonzero(np.arange(len(labels)) <= last[labels])
        labels, ignored, tp = labels[keep], ignored[:, keep], tp[:, keep]
        self._num_t = tp.shape[0]
        self._img = matches.det_image[order][keep]
        self._counted = ~ignored if ignored.any() else None  # None: every detection counts
        # The true positives of all thresholds, flattened: by threshold, then class, then descending score.
        t_of, pos = np.nonzero(tp)
        cls = labels[pos]
        self._pos, self._cls, self._tp_img = pos, cls, self._img[pos]
        self._after_pos = pos + 1  # running-sum index just after each true positive
        seg = t_of * k + cls  # segment (threshold, class): non-decreasing
        seg_start = np.searchsorted(seg, np.arange(self._num_t * k), side="left")
        self._before_seg = seg_start[seg]  # running-sum index just before the segment's first entry
        class_start = np.searchsorted(labels, np.arange(k), side="left")
        self._before_class = class_start[cls]  # running-sum index just before the class's first detection
        self._seg_key = seg * (_NUM_REC + 1)  # bucket (segment, recall thresholds reached) = this + reached
        self._t_bounds = np.searchsorted(t_of, np.arange(self._num_t + 1), side="left")
        num_images = len(matches.image_ids)
        keep_gt = ~matches.gt_crowd
        self._gt_counts = np.zeros((num_images, k), dtype=np.float64)
        np.add.at(self._gt_counts, (matches.gt_image[keep_gt], matches.gt_labels[keep_gt]), 1.0)
        self._per_image = np.bincount(self._img, minlength=num_images).astype(np.float64)  # detections per image
        self._offset = 2.0 * (k - np.arange(k))  # the rounding of earlier releases, kept for identical numbers

    def per_class_many(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AP [B, T, K] with -1 for classes without weighted ground truth, weighted num_gt [B, K]) of B
        weightings [B, I]."""
        weights = np.asarray(weights, dtype=np.float64).reshape(-1, self._gt_counts.shape[0])
        num_b = weights.shape[0]
        num_gt = weights @ self._gt_counts  # [B, K]
        ap = np.zeros((num_b, self._num_t, self._k))
        if len(self._pos):
            workers = max(1, min(_usable_cpus(), num_b, _MAX_THREADS))
            blocks = [(lo, min(num_b, lo + -(-num_b // workers))) for lo in range(0, num_b, -(-num_b // workers))]

            # Integer weights whose sums fit int32 are summed as int32: exact either way, and a running sum of
            # int32 is several times faster than one of float64 (an addition's latency bounds it).
            small = np.array_equal(weights, np.round(weights)) and float((weights @ self._per_image).max()) < 2**31
            dtype: type = np.int32 if small else np.float64
            counts: np.ndarray = weights.astype(dtype)

            def run(block: tuple[int, int]) -> None:
                buffers = _Buffers(len(self._pos), len(self._img), dtype)
                for b in range(*block):
                    ap[b] = self._ap_one(counts[b], num_gt[b], buffers)

            if len(blocks) > 1:  # numpy releases the GIL in its loops: blocks run on several cores at once
                with ThreadPoolExecutor(len(blocks)) as pool:
                    list(pool.map(run, blocks))
            else:
                run(blocks[0])
        return np.where(num_gt[:, None, :] > 0, ap, -1.0), num_gt

    def _ap_one(self, weights: np.ndarray, num_gt: np.ndarray, buf: _Buffers) -> np.ndarray:
        """AP [T, K] of one weighting [I] (int32 counts or float64; 0 for classes without weighted ground truth)."""
        # Weighted true positives up to each true positive, within its segment (exact: sums of integers).
        np.take(weights, self._tp_img, out=buf.s_p)
        np.cumsum(buf.s_p, out=buf.run_p[1:])
        tps = np.subtract(buf.run_p[1:], np.take(buf.run_p, self._before_seg, out=buf.s_p), out=buf.s_p)
        counted = self._counted_at_tps(weights, buf)
        # tps / (tps + fps + eps) in float64 (integer sums convert exactly inside the ufuncs)
        precision = np.divide(tps, np.add(counted, _EPS, out=buf.p2), out=buf.p2)
        # Number of recall thresholds <= recall: the best precision reaching recall threshold j is the maximum
        # over the true positives whose count exceeds j. Keys (segment, count) are sorted.
        keys = np.add(self._seg_key, self._reached(tps, num_gt, buf), out=buf.key)
        np.not_equal(keys[1:], keys[:-1], out=buf.new[1:])
        starts = np.flatnonzero(buf.new)
        best = np.zeros(self._num_t * self._k * (_NUM_REC + 1))
        best[keys[starts]] = np.maximum.reduceat(precision, starts)
        best = best.reshape(self._num_t, self._k, _NUM_REC + 1)
        q = np.maximum.accumulate(best[..., ::-1], axis=-1)[..., ::-1][..., 1:]
        off = self._offset[None, :, None]
        q = np.ascontiguousarray((q + off) - off)
        return q.mean(axis=-1)

    def _reached(self, tps: np.ndarray, num_gt: np.ndarray, buf: _Buffers) -> np.ndarray:
        """[P] how many of `RECALL_THRESHOLDS` are <= each true positive's recall tps / num_gt of its class (0
        for a class without weighted ground truth, as tps / inf). With integer counts, recall takes one of
        num_gt + 1 values per class: they are looked up in a table built per weighting (the same divisions)."""
        gts = np.rint(num_gt).astype(np.int64) if tps.dtype == np.int32 else None
        if gts is None or not np.array_equal(gts, num_gt) or int(gts.sum()) > 4 * len(tps):
            gt_safe = np.where(num_gt > 0, num_gt, np.inf)
            return _thresholds_reached(np.divide(tps, np.take(gt_safe, self._cls, out=buf.p0), out=buf.p0))
        sizes = gts + 1
        first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        values = np.arange(int(sizes.sum())) - np.repeat(first, sizes)  # 0..G_k for each class k
        gt_safe = np.where(num_gt > 0, num_gt, np.inf)
        table = np.searchsorted(_REC, values / np.repeat(gt_safe, sizes), side="right")
        # tps <= num_gt of the class: each true positive has its own box.
        index = np.add(tps, np.take(first.astype(np.int32), self._cls), out=buf.s_p2)
        return np.take(table, index)

    def _counted_at_tps(self, weights: np.ndarray, buf: _Buffers) -> np.ndarray:
        """[P] weighted count of the detections (true or false positives) of each true positive's class up
        to and including it (in the sums' dtype; float64 when some detections are ignored)."""
        det_w = np.take(weights, self._img, out=buf.s_m)
        if self._counted is None:
            np.cumsum(det_w, out=buf.run_m[1:])
            np.take(buf.run_m, self._after_pos, out=buf.s_p3)
            return np.subtract(buf.s_p3, np.take(buf.run_m, self._before_class, out=buf.s_p2), out=buf.s_p3)
        for t in range(self._num_t):
            a, b = self._t_bounds[t], self._t_bounds[t + 1]
            if a < b:
                np.cumsum(det_w * self._counted[t].astype(det_w.dtype), out=buf.run_m[1:])
                buf.p2[a:b] = buf.run_m[self._after_pos[a:b]] - buf.run_m[self._before_class[a:b]]
        return buf.p2

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


class _Buffers:
    """Scratch arrays of one thread for `WeightedAP._ap_one`: P true positives, M detections; sums in `dtype`."""

    def __init__(self, num_p: int, num_m: int, dtype: type) -> None:
        self.p0: np.ndarray = np.empty(num_p)
        self.p2: np.ndarray = np.empty(num_p)
        self.s_p: np.ndarray = np.empty(num_p, dtype)
        self.s_p2: np.ndarray = np.empty(num_p, dtype)
        self.s_p3: np.ndarray = np.empty(num_p, dtype)
        self.s_m: np.ndarray = np.empty(num_m, dtype)
        self.run_p: np.ndarray = np.zeros(num_p + 1, dtype)  # running sums with a zero in front
        self.run_m: np.ndarray = np.zeros(num_m + 1, dtype)
        self.key: np.ndarray = np.empty(num_p, dtype=np.int64)
        self.new: np.ndarray = np.ones(num_p, dtype=bool)  # [0] stays True: the first entry starts a bucket


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
