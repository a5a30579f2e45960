"""The PNG plots of the dataset statistics report.

Plots are drawn with matplotlib's Agg canvas created inside each call (pyplot and the global backend
are never touched); every file is written atomically. Sizes are shown on log axes with plain tick labels
(`1%`, `10%`, `32`, `100`), so small objects are as visible as large ones.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detforge.data.dataset import Dataset
from detforge.data.stats import LARGE_AREA, SMALL_AREA, BoxMeasures, DatasetStats, box_measures
from detforge.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PLOT_FILES", "ModelInput", "resized_scale", "write_plots"]

PLOT_FILES = (
    "instances_per_class.png",
    "boxes_per_image.png",
    "relative_box_size.png",
    "box_size_px.png",
    "aspect_ratio.png",
    "box_centers.png",
)
"""The plots `write_plots` writes, in the order the report shows them."""

_MAX_CLASS_BARS = 60
_SMALL_SIDE, _LARGE_SIDE = math.sqrt(SMALL_AREA), math.sqrt(LARGE_AREA)  # COCO's 32 and 96 px


@dataclass(frozen=True)
class ModelInput:
    """How a model resizes its input: the shorter side to `min_size`, unless the longer would pass `max_size`."""

    name: str
    min_size: int
    max_size: int

    def __post_init__(self) -> None:
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(f"ModelInput: expected 0 < min_size <= max_size, got {self.min_size}, {self.max_size}")


def resized_scale(width: np.ndarray, height: np.ndarray, model: ModelInput) -> np.ndarray:
    """Per image, the factor torchvision's GeneralizedRCNNTransform scales it by: min_size / short side,
    lowered so that the long side stays within max_size. Images of unknown size (0) get NaN."""
    short = np.minimum(width, height).astype(np.float64)
    long = np.maximum(width, height).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.minimum(model.min_size / short, model.max_size / long)
    return np.where(short > 0, scale, np.nan)


def _mpl_text(text: str) -> str:
    """Text matplotlib shows literally ('$' would otherwise start mathtext)."""
    return text.replace("$", r"\$")


def _save_plot(path: Path, draw: Callable[[Axes], None], size: tuple[float, float] = (6.4, 4.0)) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig.add_subplot())
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _integer_ticks(ax: Axes, axis: str) -> None:
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def _plain_log_ticks(ax: Axes, axis: str, percent: bool = False) -> None:
    """Log-axis ticks at 1, 2, 5 x 10^k labelled as plain numbers (or percentages), no 10^k notation."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def label(value: float, _pos: int) -> str:
        shown = value * 100 if percent else value
        text = f"{shown:.10g}" if shown >= 1 else f"{shown:.2g}"
        return text + ("%" if percent else "")

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(label))
    target.set_minor_formatter(NullFormatter())


def _log_limits(values: np.ndarray, top: float | None = None) -> tuple[float, float]:
    """Limits of a log axis around positive `values`: whole 1-2-5 steps outside min and max."""
    lo, hi = float(values.min()), float(values.max())
    steps = [m * 10.0**k for k in range(-6, 7) for m in (1.0, 2.0, 5.0)]
    lo = max((s for s in steps if s <= lo), default=lo)
    hi = min((s for s in steps if s >= hi), default=hi)
    if top is not None:
        hi = min(hi, top)
    return (lo, hi) if hi > lo else (lo / 2, hi * 2)


def _log_histogram(ax: Axes, values: np.ndarray, color: str, *, percent: bool = False) -> None:
    """A 40-bin histogram of positive `values` on a log x axis fitted to them, with plain tick labels."""
    lo, hi = _log_limits(values)
    ax.hist(values, bins=[float(e) for e in np.geomspace(lo, hi, 41)], color=color)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    _plain_log_ticks(ax, "x", percent=percent)
    _integer_ticks(ax, "y")


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_instances(stats: DatasetStats) -> tuple[Callable[[Axes], None], tuple[float, float]]:
    classes = sorted(stats.classes, key=lambda c: -c.instances)[:_MAX_CLASS_BARS]
    hidden = len(stats.classes) - len(classes)

    def draw(ax: Axes) -> None:
        if not classes:
            return _no_data(ax)
        ys = np.arange(len(classes))
        ax.barh(ys, [c.instances for c in classes], color="#0072B2")
        ax.set_yticks(ys, [_mpl_text(c.name) for c in classes])
        ax.invert_yaxis()
        ax.set_xlabel("instances")
        _integer_ticks(ax, "x")
        title = "Instances per class" + (f" (top {len(classes)}; {hidden} more in the table)" if hidden else "")
        ax.set_title(title)

    return draw, (6.4, max(3.0, 0.25 * len(classes) + 1.2))


def _plot_boxes_per_image(stats: DatasetStats) -> Callable[[Axes], None]:
    dist = stats.boxes_per_image

    def draw(ax: Axes) -> None:
        if stats.num_images == 0:
            return _no_data(ax)
        edges = np.asarray(dist.edges, dtype=float)
        ax.bar(edges[:-1], dist.histogram, width=np.diff(edges), align="edge", color="#E69F00", edgecolor="white")
        ax.set_xlabel("boxes per image")
        ax.set_ylabel("images")
        _integer_ticks(ax, "y")
        ax.set_title(f"Boxes per image (mean {dist.mean:.2f}, max {dist.max})")

    return draw


def _plot_relative_size(m: BoxMeasures) -> Callable[[Axes], None]:
    values = m.relative_size[m.known]
    values = values[values > 0]

    def draw(ax: Axes) -> None:
        if values.size == 0:
            return _no_data(ax)
        _log_histogram(ax, values, "#009E73", percent=True)
        median = float(np.median(values))
        ax.axvline(median, color="#333333", linestyle="--", linewidth=1)
        ax.set_xlabel("box side relative to image side: sqrt(box area / image area), log scale")
        ax.set_ylabel("boxes")
        ax.set_title(f"Relative box size (median {100 * median:.2g}%)")

    return draw


@dataclass(frozen=True)
class _PixelSizes:
    width: np.ndarray  # [M] box width in px, image as stored
    height: np.ndarray  # [M]
    scale: np.ndarray  # [M] the model's resize factor of each box's image (NaN: unknown size or no model)


def _pixel_sizes(dataset: Dataset, model: ModelInput | None) -> _PixelSizes:
    sizes = {im.id: (im.width, im.height) for im in dataset.images}
    rows = []
    for ann in dataset.annotations:
        x0, y0, x1, y1 = (float(v) for v in ann.bbox)
        if ann.is_finite() and x1 > x0 and y1 > y0:
            rows.append((x1 - x0, y1 - y0, *sizes.get(ann.image_id, (0, 0))))
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    scale = resized_scale(data[:, 2], data[:, 3], model) if model else np.full(len(data), np.nan)
    return _PixelSizes(data[:, 0], data[:, 1], scale)


def _size_panel(ax: Axes, w: np.ndarray, h: np.ndarray, limits: tuple[float, float], title: str) -> None:
    if w.size == 0:
        return _no_data(ax)
    ax.scatter(w, h, s=6, alpha=0.5, color="#0072B2", edgecolors="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    for side in (_SMALL_SIDE, _LARGE_SIDE):  # COCO's small / large area bounds: w * h = 32², 96²
        if not limits[0] < side < limits[1]:
            continue
        xs = np.geomspace(limits[0], limits[1], 50)
        ax.plot(xs, side * side / xs, color="#999999", linewidth=0.8, linestyle=":")
        ax.annotate(f"area {side:.0f}² ", (side, side), fontsize=7, color="#666666", ha="right", va="top")
    _plain_log_ticks(ax, "x")
    _plain_log_ticks(ax, "y")
    ax.set_xlabel("box width (px)")
    ax.set_ylabel("box height (px)")
    ax.set_title(title, fontsize=10)


def _plot_pixel_sizes(px: _PixelSizes, model: ModelInput | None) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        known = np.isfinite(px.scale)
        panels = [(px.width, px.height, "as stored")]
        if model is not None:
            note = f"after the model's resize (short side {model.min_size}, long <= {model.max_size} px)"
            panels.append((px.width[known] * px.scale[known], px.height[known] * px.scale[known], note))
        both = np.concatenate([np.concatenate([w, h]) for w, h, _ in panels])
        limits = _log_limits(both[both > 0]) if both.size else (1.0, 10.0)
        if len(panels) == 1:
            return _size_panel(ax, *panels[0][:2], limits, "Box width x height, " + panels[0][2])
        fig = ax.figure
        ax.remove()
        for i, (w, h, note) in enumerate(panels):
            _size_panel(fig.add_subplot(1, 2, i + 1), w, h, limits, note)
        model_name = model.name if model is not None else ""
        fig.suptitle(f"Box width x height in pixels; model {model_name} (dotted: COCO small/large bounds)", fontsize=10)

    return draw


def _plot_aspect_ratio(m: BoxMeasures) -> Callable[[Axes], None]:
    values = np.clip(m.aspect_ratio, 0.01, 100.0)

    def draw(ax: Axes) -> None:
        if values.size == 0:
            return _no_data(ax)
        _log_histogram(ax, values, "#CC79A7")
        ax.set_xlabel("aspect ratio width / height (log scale)")
        ax.set_ylabel("boxes")
        ax.set_title("Box aspect ratio")

    return draw


def _plot_centers(m: BoxMeasures) -> Callable[[Axes], None]:
    centers = m.centers[m.known]

    def draw(ax: Axes) -> None:
        if centers.size == 0:
            return _no_data(ax)
        clipped = np.clip(centers, 0.0, 1.0)
        heat, _, _ = np.histogram2d(clipped[:, 1], clipped[:, 0], bins=32, range=[[0.0, 1.0], [0.0, 1.0]])
        image = ax.imshow(heat, extent=(0.0, 1.0, 1.0, 0.0), cmap="viridis", interpolation="nearest")
        ax.figure.colorbar(image, ax=ax, label="boxes")
        ax.set_xlabel("centre x / image width")
        ax.set_ylabel("centre y / image height")
        ax.set_title("Box centres (image frame, top at the top)")

    return draw


def write_plots(dataset: Dataset, stats: DatasetStats, out: Path, model: ModelInput | None = None) -> None:
    """Write every plot of `PLOT_FILES` into the existing folder `out`.

    `stats` must be `dataset_stats(dataset)`. With `model`, the pixel-size plot adds a panel of the box
    sizes after that model's resize; without it the panel is left out.
    """
    measures = box_measures(dataset)
    instances, instances_size = _plot_instances(stats)
    _save_plot(out / PLOT_FILES[0], instances, instances_size)
    _save_plot(out / PLOT_FILES[1], _plot_boxes_per_image(stats))
    _save_plot(out / PLOT_FILES[2], _plot_relative_size(measures))
    pixel_size = (10.0, 4.8) if model is not None else (5.6, 4.8)
    _save_plot(out / PLOT_FILES[3], _plot_pixel_sizes(_pixel_sizes(dataset, model), model), pixel_size)
    _save_plot(out / PLOT_FILES[4], _plot_aspect_ratio(measures))
    _save_plot(out / PLOT_FILES[5], _plot_centers(measures), (5.6, 4.8))
