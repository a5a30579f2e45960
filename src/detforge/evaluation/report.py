"""The evaluation report: `report.html` with its figures and a gallery of the worst images, and `metrics.json`.

Every file is written atomically; every user string (class names, file names) is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.evaluation.analysis import ClassTable, ConfusionMatrix, PRCurves
from detforge.evaluation.bootstrap import BootstrapCI
from detforge.evaluation.calibration import Calibration
from detforge.evaluation.error_analysis import ERROR_TYPES, FIX_NAMES, ErrorBreakdown
from detforge.evaluation.matching import Matches, match_detections
from detforge.evaluation.metrics import STAT_NAMES, CocoMetrics
from detforge.evaluation.report_plots import confusion_png, errors_png, f1_png, pr_png
from detforge.evaluation.report_read import read_section_html
from detforge.evaluation.text_metrics import ReadMetrics
from detforge.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text
from detforge.structures import Annotation, Categories, ImageRecord
from detforge.visualization.colors import color_for
from detforge.visualization.draw import draw_boxes

if TYPE_CHECKING:
    from detforge.structures.detections import Detections

__all__ = ["GALLERY_STYLE", "WorstImage", "draw_image_errors", "worst_images", "write_eval_report"]

GALLERY_STYLE: Mapping[str, int] = {"gt": 2, "tp": 4, "fp": 5, "missed": 0}
"""Palette index (see `detforge.visualization.colors`) of each box kind in the gallery: ground truth
bluish green, true positive blue, false positive vermillion (red), missed ground truth orange."""

_MAX_SIDE = 800  # gallery images are shrunk to this longest side
_E = html.escape


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class WorstImage:
    """One gallery image: its record and, at the report's score threshold and IoU 0.5, the indices into
    `matches` of its true positives, false positives, matched and missed ground truth."""

    image: ImageRecord
    tp: np.ndarray
    fp: np.ndarray
    gt_matched: np.ndarray
    gt_missed: np.ndarray

    @property
    def num_errors(self) -> int:
        return len(self.fp) + len(self.gt_missed)


def worst_images(
    matches: Matches, images: Sequence[ImageRecord], *, score_threshold: float, k: int
) -> list[WorstImage]:
    """The `k` images with the most false positives + missed boxes (detections with score >= threshold,
    IoU 0.5; ties: lower image id first); images without errors are left out."""
    by_id = {im.id: im for im in images}
    kept = matches.det_scores >= score_threshold
    tp, fp = matches.true_positives(0.5) & kept, matches.false_positives(0.5) & kept
    matched = np.zeros(len(matches.gt_labels), dtype=bool)
    matched[matches.det_gt[matches.threshold_index(0.5)][tp]] = True
    missed = ~matched & ~matches.gt_crowd
    errors = np.bincount(matches.det_image[fp], minlength=len(matches.image_ids))
    errors = errors + np.bincount(matches.gt_image[missed], minlength=len(matches.image_ids))
    order = [i for i in np.argsort(-errors, kind="stable") if errors[i] > 0][:k]
    out = []
    for i in order:
        d_here, g_here = matches.det_image == i, matches.gt_image == i
        out.append(WorstImage(
            by_id[matches.image_ids[i]], np.flatnonzero(tp & d_here), np.flatnonzero(fp & d_here),
            np.flatnonzero(matched & g_here), np.flatnonzero(missed & g_here),
        ))  # fmt: skip
    return out


def draw_image_errors(image: Image.Image, item: WorstImage, matches: Matches) -> Image.Image:
    """`image` with ground truth ("GT <class>", thick), missed ground truth ("missed <class>", thick),
    true positives ("<class> <score>") and false positives ("FP <class> <score>") drawn in `GALLERY_STYLE`.

    Detections are drawn last with a third of the line width, so a detection that coincides with its
    ground truth box covers only the outer part of the thick ground truth line."""
    names = matches.categories.names
    width = max(3, round(0.006 * max(image.size)))  # ground truth: thick; detections drawn on top, thin
    gt_idx = np.concatenate([item.gt_matched, item.gt_missed])
    gt_labels = [f"GT {names[matches.gt_labels[g]]}" for g in item.gt_matched]
    gt_labels += [f"missed {names[matches.gt_labels[g]]}" for g in item.gt_missed]
    gt_style = [GALLERY_STYLE["gt"]] * len(item.gt_matched) + [GALLERY_STYLE["missed"]] * len(item.gt_missed)
    drawn = draw_boxes(image, matches.gt_boxes[gt_idx], gt_labels, class_ids=gt_style, line_width=width)
    det_idx = np.concatenate([item.tp, item.fp])
    det_labels = [names[matches.det_labels[d]] for d in item.tp] + [
        f"FP {names[matches.det_labels[d]]}" for d in item.fp
    ]
    det_style = [GALLERY_STYLE["tp"]] * len(item.tp) + [GALLERY_STYLE["fp"]] * len(item.fp)
    return draw_boxes(
        drawn, matches.det_boxes[det_idx], det_labels, scores=matches.det_scores[det_idx].tolist(),
        class_ids=det_style, line_width=max(1, width // 3),
    )  # fmt: skip


def _gallery(out: Path, matches: Matches, images: Sequence[ImageRecord], score_threshold: float, k: int) -> str:
    items = []
    names = matches.categories.names
    for rank, item in enumerate(worst_images(matches, images, score_threshold=score_threshold, k=k), start=1):
        im = item.image
        caption = (
            f"<b>{_E(im.file_name)}</b> (id {im.id}): {len(item.fp)} false positives, {len(item.gt_missed)} missed, "
            f"{len(item.tp)} correct"
        )
        fp_classes = sorted({names[matches.det_labels[d]] for d in item.fp})
        if fp_classes:
            caption += "<br>false positives: " + ", ".join(_E(c) for c in fp_classes)
        try:
            picture = draw_image_errors(load_image(im.path), item, matches)
            picture.thumbnail((_MAX_SIDE, _MAX_SIDE))
            buf = io.BytesIO()
            picture.save(buf, format="JPEG", quality=88)
            rel = f"worst/{rank:03d}_image_{im.id}.jpg"
            atomic_write_bytes(out / rel, buf.getvalue())
            body = f'<a href="{rel}"><img src="{rel}" alt="{_E(im.file_name, quote=True)}" loading="lazy"></a>'
        except (OSError, DetforgeError) as e:
            body = f'<div class="unreadable">cannot show {_E(str(im.path))}: {_E(str(e))}</div>'
        items.append(f'<section class="item">{body}<p>{caption}</p></section>')
    if not items:
        return "<p>No image has a false positive or a missed box at this threshold.</p>"
    return "\n".join(items)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return "n/a" if value == -1 else f"{value:.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are given already escaped."""
    head = "".join(f"<th>{_E(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_html(metrics: CocoMetrics, bootstrap: BootstrapCI | None) -> str:
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap is not None and bootstrap.ap >= 0:
        ci = {"ap": (bootstrap.ap_low, bootstrap.ap_high), "ap50": (bootstrap.ap50_low, bootstrap.ap50_high)}
    rows = [
        [_E(name), _num(getattr(metrics, name)), f"{_num(ci[name][0])} – {_num(ci[name][1])}" if name in ci else ""]
        for name in STAT_NAMES
    ]
    level = f"{100 * bootstrap.confidence:.0f}% interval" if bootstrap is not None else "interval"
    note = (f"<p>Intervals: percentile bootstrap over {bootstrap.num_images} images, {bootstrap.n} resamples, "
            f"seed {bootstrap.seed}.</p>" if bootstrap is not None else "")  # fmt: skip
    facts = f"<p>{metrics.num_images} images, {metrics.num_detections} detections; n/a = no data for this metric.</p>"
    return facts + _table(["metric", "value", level], rows) + note


def _class_table_html(table: ClassTable) -> str:
    rows = [[_E(r.name), str(r.num_gt), str(r.num_pred), _num(r.ap), _num(r.ap50), _num(r.best_f1),
             _num(r.best_threshold)] for r in table.rows]  # fmt: skip
    return _table(["class", "#GT", "#pred", "AP", "AP50", "best F1", "at score"], rows)


def _errors_html(errors: ErrorBreakdown) -> str:
    rows = [[_E(name), str(errors.counts[name]) if name in ERROR_TYPES else "", f"{100 * errors.delta_ap50[name]:+.2f}"]
            for name in FIX_NAMES]  # fmt: skip
    return (
        f"<p>AP50 {_num(errors.ap50)} with {errors.num_true_positives} true and {errors.num_false_positives} false "
        f"positives over all scores for {errors.num_gt} boxes (foreground IoU {errors.foreground_iou}, background IoU "
        f"{errors.background_iou}). Each row: how many errors of the type, and the AP50 points an oracle fixing only "
        "that type would gain.</p>" + _table(["error type", "count", "AP50 gain (points)"], rows)
    )


def _calibration_html(calibration: Calibration | None, threshold: float) -> str:
    if calibration is None:
        return f"<p>No calibrated threshold (no detections or no ground truth); the report uses {threshold:.3f}.</p>"
    what = "best F1" if calibration.mode == "f1" else f"precision >= {calibration.target_precision}"
    return (
        f"<p>Score threshold for {_E(what)} over all classes: <b>{calibration.threshold:.4f}</b> (precision "
        f"{calibration.precision:.3f}, recall {calibration.recall:.3f}, F1 {calibration.f1:.3f}). The confusion "
        f"matrix and the gallery use score >= {threshold:.4f}.</p>"
    )


_STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 640px; }
.item { display: inline-block; vertical-align: top; width: 420px; margin: 0.5em; }
.item img { max-width: 400px; max-height: 400px; }
.unreadable { width: 400px; padding: 1em; background: #fde8e8; color: #a00; overflow-wrap: anywhere; }
.key span { padding: 0 0.5em; color: white; }
img.crop { height: 64px; margin: 2px; border: 1px solid #ccc; vertical-align: middle; }"""


def write_eval_report(
    out_dir: str | Path,
    *,
    metrics: CocoMetrics,
    table: ClassTable,
    pr: PRCurves,
    confusion: ConfusionMatrix,
    errors: ErrorBreakdown,
    bootstrap: BootstrapCI | None,
    calibration: Calibration | None,
    images: Sequence[ImageRecord],
    annotations: Sequence[Annotation],
    categories: Categories,
    predictions: Mapping[int, Detections],
    worst_k: int = 12,
    read: ReadMetrics | None = None,
) -> Path:
    """Write `report.html`, `metrics.json`, the figures (pr.png, f1.png, confusion.png, errors.png) and
    `worst/*.jpg` (the `worst_k` images with the most false positives + missed boxes at the confusion
    matrix's score threshold) into `out_dir`; return the HTML path. Unreadable images are noted, not fatal.
    With `read` (read accuracy), adds a "Reading" section with the most common misreads and their crops
    (`misreads/*.jpg`), and "read" to metrics.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threshold = confusion.score_threshold
    figures = {"pr.png": pr_png(pr), "f1.png": f1_png(pr), "confusion.png": confusion_png(confusion),
               "errors.png": errors_png(errors)}  # fmt: skip
    for name, data in figures.items():
        atomic_write_bytes(out / name, data)
    matches = match_detections(images, annotations, categories, predictions, iou_thresholds=(0.5,))
    gallery = _gallery(out, matches, images, threshold, worst_k) if worst_k > 0 else ""
    atomic_write_json(out / "metrics.json", {
        "metrics": metrics.to_dict(),
        "bootstrap": bootstrap.to_dict() if bootstrap is not None else None,
        "calibration": calibration.to_dict() if calibration is not None else None,
        "per_class": table.to_dict()["rows"],
        "errors": errors.to_dict(),
        "confusion": confusion.to_dict(),
        "pr": pr.to_dict(),
        **({"read": read.to_dict()} if read is not None else {}),
    })  # fmt: skip
    reading = f"<h2>Reading</h2>\n{read_section_html(out, read, images)}\n" if read is not None else ""
    key = "".join(
        f'<span style="background: rgb{color_for(GALLERY_STYLE[kind])}">{label}</span> '
        for kind, label in (("gt", "ground truth"), ("missed", "missed"), ("tp", "correct"), ("fp", "false positive"))
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>detforge evaluation report</title>
<style>
{_STYLE}
</style></head><body>
<h1>Evaluation report</h1>
<h2>COCO metrics</h2>
{_metrics_html(metrics, bootstrap)}
<h2>Score threshold</h2>
{_calibration_html(calibration, threshold)}
<h2>Per class</h2>
{_class_table_html(table)}
{reading}
<h2>Curves</h2>
<figure><img src="pr.png" alt="precision-recall curves"></figure>
<figure><img src="f1.png" alt="F1 versus score threshold"></figure>
<h2>Confusion matrix</h2>
<figure><img src="confusion.png" alt="confusion matrix"></figure>
<h2>Errors</h2>
{_errors_html(errors)}
<figure><img src="errors.png" alt="AP50 gain per error type"></figure>
<h2>Worst images</h2>
<p class="key">{key}</p>
{gallery}
<p><a href="metrics.json">metrics.json</a> holds every number above.</p>
</body></html>
"""
    return atomic_write_text(out / "report.html", page)
