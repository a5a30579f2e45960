"""The evaluation report's figures as PNG bytes (matplotlib's Agg canvas, no pyplot global state)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.evaluation.analysis import CONFIDENCE_GRID, ConfusionMatrix, PRCurves
from detforge.evaluation.error_analysis import FIX_NAMES, ErrorBreakdown
from detforge.evaluation.matching import RECALL_THRESHOLDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_png", "errors_png", "f1_png", "pr_png"]

_LEGEND_MAX = 12  # more classes than this: no per-class legend
_ANNOTATE_MAX = 25  # more classes than this: no numbers in the confusion cells


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _class_lines(
    ax: Any, xs_ys: list[tuple[str, np.ndarray, np.ndarray]], micro: tuple[np.ndarray, np.ndarray]
) -> None:
    many = len(xs_ys) > _LEGEND_MAX
    for name, xs, ys in xs_ys:
        ax.plot(xs, ys, linewidth=0.8, alpha=0.5 if many else 0.9, label=None if many else name)
    ax.plot(*micro, color="black", linewidth=2.2, label="all classes")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)


def pr_png(pr: PRCurves) -> bytes:
    """Precision versus recall (COCO's interpolated curve) per class and for all classes pooled."""
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    rec = np.asarray(RECALL_THRESHOLDS)
    lines = [(c.name, rec, c.interpolated_precision) for c in pr.classes if c.num_gt > 0]
    _class_lines(ax, lines, (rec, pr.micro.interpolated_precision))
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Precision-recall at IoU {pr.iou:.2f} (all classes AP50 {max(pr.micro.ap50, 0):.3f})")
    return _png(fig)


def f1_png(pr: PRCurves) -> bytes:
    """F1 versus score threshold per class and for all classes pooled, with the best pooled F1 marked."""
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    grid = np.asarray(CONFIDENCE_GRID)
    lines = [(c.name, grid, c.at(CONFIDENCE_GRID)[2]) for c in pr.classes if c.num_gt > 0]
    _class_lines(ax, lines, (grid, pr.micro.at(CONFIDENCE_GRID)[2]))
    best, thr = pr.micro.best_f1, pr.micro.best_threshold
    if thr is not None:
        ax.axvline(thr, color="black", linestyle=":", linewidth=1)
        ax.set_title(f"F1 versus score threshold (best all-class F1 {best:.3f} at {thr:.3f})")
    else:
        ax.set_title("F1 versus score threshold")
    ax.set_xlabel("score threshold")
    ax.set_ylabel("F1")
    return _png(fig)


def confusion_png(confusion: ConfusionMatrix) -> bytes:
    """Heatmap of the confusion matrix, coloured by row share, with counts in the cells when it is small."""
    n = len(confusion.names)
    side = float(min(18.0, max(5.0, 0.45 * n + 2.5)))
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(confusion.normalized(), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=list(confusion.names), rotation=90, fontsize=7 if n > 15 else 9)
    ax.set_yticks(ticks, labels=list(confusion.names), fontsize=7 if n > 15 else 9)
    ax.set_xlabel("predicted class (background = missed)")
    ax.set_ylabel("ground truth class (background = false positive)")
    ax.set_title(f"Confusion at IoU {confusion.iou:.2f}, score >= {confusion.score_threshold:.3f}")
    if n <= _ANNOTATE_MAX:
        shares = confusion.normalized()
        for r in range(n):
            for c in range(n):
                if confusion.matrix[r, c]:
                    color = "white" if shares[r, c] > 0.5 else "black"
                    ax.text(c, r, str(int(confusion.matrix[r, c])), ha="center", va="center", fontsize=7, color=color)
    return _png(fig)


def errors_png(errors: ErrorBreakdown) -> bytes:
    """Horizontal bars: the AP50 points gained by fixing each error type."""
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    gains = [100.0 * errors.delta_ap50[name] for name in FIX_NAMES]
    colors = ["#D55E00"] * 6 + ["#999999"] * 2
    ax.barh(list(FIX_NAMES)[::-1], gains[::-1], color=colors[::-1])
    ax.set_xlabel("AP50 points gained by an oracle fix")
    ax.set_title("Where AP50 is lost")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
