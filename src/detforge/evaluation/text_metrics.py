"""Read accuracy: how well the values read inside detected boxes match the labelled transcriptions.

Pure computation (no model, no files). Every text is compared by its normalised value
(`detforge.structures.text.normalize_text`); a ground truth box whose text normalises to "" counts as a
box without text. Definitions (all at one operating point: detections with score >= `score_threshold`):

- read classes: the classes evaluated; by default those with at least one ground truth text and at least
  one detection that was read (text not None);
- labelled boxes: non-crowd ground truth boxes of a read class with a text;
- matching: per image and class, detections in descending score order take the unmatched labelled box of
  their class with the highest IoU >= `iou` (COCO's greedy one-to-one rule, `greedy_match`; crowd regions
  and read-class boxes without text are matched too so that they absorb their detections, but never count);
- exact accuracy: matched labelled boxes whose detection's value equals the label / matched labelled boxes
  (a detection that was not read counts as a wrong, empty read);
- CER (character error rate): the summed Levenshtein distance between label and value read over the
  matched labelled boxes / their summed label length;
- end-to-end recall: labelled boxes matched AND read exactly / all labelled boxes, next to detection
  recall: labelled boxes matched / all labelled boxes (so the two differ only by misreads);
- page accuracy: images where the multiset of non-empty values read by the kept read-class detections
  equals the multiset of labelled values; images with a read-class box that lacks a text (truth
  unknown) are left out, images with neither labels nor reads count as correct;
- misreads: (label, value read) pairs of matched boxes that differ, most common first, with examples.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detforge.errors import DatasetError
from detforge.evaluation.matching import greedy_match, iou_matrix
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.structures.text import edit_distance, normalize_text

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["Misread", "MisreadExample", "ReadMetrics", "edit_distance", "has_read_data", "read_metrics"]


@dataclass(frozen=True)
class MisreadExample:
    """Where one misread happened: the image id, the detection's box (XYXY pixels) whose crop was read,
    and the recogniser's confidence in the value (None where it gave none)."""

    image_id: int
    box: tuple[float, float, float, float]
    text_score: float | None

    def to_dict(self) -> dict[str, object]:
        return {"image_id": self.image_id, "box": list(self.box), "text_score": self.text_score}


@dataclass(frozen=True)
class Misread:
    """One kind of misread: the labelled value `truth`, the value `read` ("" when the detection was read
    as nothing or not read at all), how many matched boxes it happened on, and up to a few examples."""

    truth: str
    read: str
    count: int
    examples: tuple[MisreadExample, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "truth": self.truth,
            "read": self.read,
            "count": self.count,
            "examples": [e.to_dict() for e in self.examples],
        }


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else math.nan


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class ReadMetrics:
    """Read accuracy at IoU `iou` and score >= `score_threshold` (see the module docstring for definitions).

    Counts: num_labelled (labelled boxes), num_matched (of those, matched by a kept detection), num_exact
    (matched and read exactly), num_chars / num_edits (label characters and edit distance over the matched
    boxes), num_images / num_images_exact (images evaluated end to end / read exactly). misreads: the most
    common first (ties: by label, then value), at most the `top_k` asked for; num_misread counts them all.
    Ratios (properties) are NaN where their denominator is 0 (None in JSON).
    """

    classes: tuple[str, ...]
    iou: float
    score_threshold: float
    num_labelled: int
    num_matched: int
    num_exact: int
    num_chars: int
    num_edits: int
    num_images: int
    num_images_exact: int
    num_misread: int
    misreads: tuple[Misread, ...]

    @property
    def exact_accuracy(self) -> float:
        """Share of matched labelled boxes read exactly."""
        return _ratio(self.num_exact, self.num_matched)

    @property
    def cer(self) -> float:
        """Character error rate: edit distance / label length, over matched labelled boxes."""
        return _ratio(self.num_edits, self.num_chars)

    @property
    def end_to_end_recall(self) -> float:
        """Share of labelled boxes both detected (IoU >= `iou`) and read exactly."""
        return _ratio(self.num_exact, self.num_labelled)

    @property
    def detection_recall(self) -> float:
        """Share of labelled boxes detected at IoU >= `iou` (the ceiling of `end_to_end_recall`)."""
        return _ratio(self.num_matched, self.num_labelled)

    @property
    def page_accuracy(self) -> float:
        """Share of evaluated images whose values read equal their labelled values (as multisets)."""
        return _ratio(self.num_images_exact, self.num_images)

    def summary(self) -> str:
        """One line for the terminal."""

        def f(v: float) -> str:
            return f"{v:.3f}" if math.isfinite(v) else "-"

        return (
            f"read: {f(self.exact_accuracy)} exact on {self.num_matched} matched boxes, CER {f(self.cer)}, "
            f"end to end {f(self.end_to_end_recall)} (detection recall {f(self.detection_recall)}) "
            f"of {self.num_labelled} labelled boxes, pages {f(self.page_accuracy)} of {self.num_images} "
            f"(IoU {self.iou:g}, score >= {self.score_threshold:.3f})"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the counts, the ratios (None where undefined) and the misreads."""
        return {
            "classes": list(self.classes),
            "iou": self.iou,
            "score_threshold": self.score_threshold,
            "exact_accuracy": _json_float(self.exact_accuracy),
            "cer": _json_float(self.cer),
            "end_to_end_recall": _json_float(self.end_to_end_recall),
            "detection_recall": _json_float(self.detection_recall),
            "page_accuracy": _json_float(self.page_accuracy),
            "num_labelled": self.num_labelled,
            "num_matched": self.num_matched,
            "num_exact": self.num_exact,
            "num_chars": self.num_chars,
            "num_edits": self.num_edits,
            "num_images": self.num_images,
            "num_images_exact": self.num_images_exact,
            "num_misread": self.num_misread,
            "misreads": [m.to_dict() for m in self.misreads],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _label_text(ann: Annotation) -> str:
    return normalize_text(ann.text) if ann.text is not None else ""


def has_read_data(annotations: Sequence[Annotation], predictions: Mapping[int, Detections]) -> bool:
    """Whether read accuracy can be measured: some ground truth box has a (non-blank) text and some
    detections carry reading results."""
    return any(_label_text(a) for a in annotations) and any(d.has_text for d in predictions.values())


def _read_classes(
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    classes: Sequence[str] | None,
) -> tuple[str, ...]:
    names = categories.names
    if classes is not None:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise DatasetError(f"read classes {unknown} are not classes of the dataset ({list(names)})")
        return tuple(c for c in names if c in set(classes))
    index = {c.id: k for k, c in enumerate(categories)}
    labelled = {index[a.category_id] for a in annotations if _label_text(a) and a.category_id in index}
    read: set[int] = set()
    for det in predictions.values():
        if det.texts is not None:
            labels = det.labels.tolist()
            read.update(labels[i] for i, t in enumerate(det.texts) if t is not None)
    return tuple(names[k] for k in sorted(labelled & read))


@dataclass
class _Tally:
    labelled: int = 0
    matched: int = 0
    exact: int = 0
    chars: int = 0
    edits: int = 0
    images: int = 0
    images_exact: int = 0


def read_metrics(
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    *,
    score_threshold: float = 0.0,
    iou: float = 0.5,
    classes: Sequence[str] | None = None,
    top_k: int = 20,
    examples: int = 3,
) -> ReadMetrics | None:
    """Read accuracy of `predictions` (image id -> Detections with texts, labels 0..K-1, XYXY pixels)
    against the transcriptions of `annotations` (see the module docstring for every definition).

    `classes` (names) restricts the read classes; None picks them from the data. Returns None when there
    is nothing to measure (`has_read_data` is False, or no read class). Keeps the `top_k` most common
    misreads with up to `examples` examples each. DatasetError for an annotation or prediction on an
    image id not in `images`, or a detection label outside 0..K-1.
    """
    if not has_read_data(annotations, predictions):
        return None
    read_names = _read_classes(annotations, categories, predictions, classes)
    if not read_names:
        return None
    names = categories.names
    read_k = {names.index(n) for n in read_names}
    index = {c.id: k for k, c in enumerate(categories)}
    per_image: dict[int, list[Annotation]] = {im.id: [] for im in images}
    for ann in annotations:
        if ann.image_id not in per_image:
            raise DatasetError(f"annotation {ann.id}: image id {ann.image_id} is not among the evaluated images")
        if index.get(ann.category_id) in read_k:
            per_image[ann.image_id].append(ann)
    unknown = sorted(set(predictions) - set(per_image))
    if unknown:
        raise DatasetError(f"predictions for image ids {unknown[:10]} that are not among the evaluated images")
    tally = _Tally()
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], list[MisreadExample]] = {}
    for image_id in sorted(per_image):
        anns = per_image[image_id]
        det = predictions.get(image_id)
        det = det.cpu().above(score_threshold) if det is not None else None
        n_det = len(det) if det is not None else 0
        labels = det.labels.numpy().astype(np.int64) if det is not None else np.zeros(0, dtype=np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            raise DatasetError(f"predictions for image {image_id}: a label is outside 0..{len(names) - 1}")
        texts: tuple[str | None, ...] = det.texts if det is not None and det.texts is not None else (None,) * n_det
        g_labels = np.asarray([index[a.category_id] for a in anns], dtype=np.int64)
        truth = [_label_text(a) for a in anns]
        counted = np.asarray([bool(t) and not a.iscrowd for t, a in zip(truth, anns, strict=True)], dtype=bool)
        tally.labelled += int(counted.sum())
        if det is not None and n_det and len(anns):
            boxes = det.boxes.numpy().astype(np.float64)
            g_boxes = np.asarray([a.bbox for a in anns], dtype=np.float64).reshape(-1, 4)
            g_crowd = np.asarray([a.iscrowd for a in anns], dtype=bool)
            iou_all = iou_matrix(boxes, g_boxes, g_crowd)
            scores = det.scores.numpy()
            text_scores = det.text_scores.numpy() if det.text_scores is not None else np.full(n_det, np.nan)
            for k in np.unique(labels):
                sel = np.flatnonzero(labels == k)
                sel = sel[np.argsort(-scores[sel], kind="stable")]
                gsel = np.flatnonzero(g_labels == k)
                gsel = gsel[np.argsort(g_crowd[gsel], kind="stable")]
                if not len(gsel):
                    continue
                matched, on_crowd = greedy_match(iou_all[np.ix_(sel, gsel)], g_crowd[gsel], np.array([iou]))
                for d, m, crowd in zip(sel, matched[0], on_crowd[0], strict=True):
                    if m < 0 or crowd or not counted[gsel[m]]:
                        continue
                    label = truth[gsel[m]]
                    text = texts[d]
                    value = normalize_text(text) if text is not None else ""
                    tally.matched += 1
                    tally.chars += len(label)
                    tally.edits += edit_distance(label, value)
                    if value == label:
                        tally.exact += 1
                        continue
                    pairs[(label, value)] += 1
                    ts = float(text_scores[d])
                    x0, y0, x1, y1 = (float(v) for v in boxes[d])
                    example = MisreadExample(image_id, (x0, y0, x1, y1), ts if math.isfinite(ts) else None)
                    where.setdefault((label, value), []).append(example)
        if any(not t and not a.iscrowd for t, a in zip(truth, anns, strict=True)):
            continue  # a read-class box without a label: this page's truth is unknown
        wanted = Counter(t for t, c in zip(truth, counted, strict=True) if c)
        got = Counter(normalize_text(t) for t, k in zip(texts, labels, strict=True) if k in read_k and t is not None)
        del got[""]
        tally.images += 1
        tally.images_exact += int(wanted == got)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    misreads = tuple(Misread(t, r, n, tuple(where[(t, r)][:examples])) for (t, r), n in ranked[: max(top_k, 0)])
    return ReadMetrics(
        classes=read_names,
        iou=float(iou),
        score_threshold=float(score_threshold),
        num_labelled=tally.labelled,
        num_matched=tally.matched,
        num_exact=tally.exact,
        num_chars=tally.chars,
        num_edits=tally.edits,
        num_images=tally.images,
        num_images_exact=tally.images_exact,
        num_misread=sum(pairs.values()),
        misreads=misreads,
    )
