"""The statistics plots: small objects visible (log axes with plain labels), sizes in pixels and after resize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.stats import box_measures, dataset_stats
from detforge.data.stats_plots import (
    PLOT_FILES,
    ModelInput,
    _pixel_sizes,
    _plot_pixel_sizes,
    _plot_relative_size,
    resized_scale,
)
from detforge.data.stats_report import write_stats_report
from detforge.structures import Annotation, Categories, ImageRecord

MODEL = ModelInput("fasterrcnn_mobilenet_v2_fpn", 512, 864)


def _small_boxes(root: Path) -> Dataset:
    """Two 640x480 and one portrait 600x1200 image with boxes of 8-40 px (all under 7% of the image side)."""
    images = (
        ImageRecord(1, "a.jpg", root / "a.jpg", 640, 480, "train"),
        ImageRecord(2, "b.jpg", root / "b.jpg", 640, 480, "val"),
        ImageRecord(3, "c.jpg", root / "c.jpg", 600, 1200, "train"),
    )
    sides = [8, 12, 16, 20, 24, 30, 40]
    anns = tuple(
        Annotation(k + 1, 1 + k % 3, 1, (10.0 * k, 5.0, 10.0 * k + s, 5.0 + s)) for k, s in enumerate(sides * 3)
    )
    return Dataset(images, anns, Categories.from_names(["digit"]), root, "test")


def _figure():  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.8), dpi=60, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _labels(axis) -> list[str]:  # type: ignore[no-untyped-def]
    lo, hi = axis.get_view_interval()
    fmt = axis.get_major_formatter()
    ticks = [t for t in axis.get_majorticklocs() if lo <= t <= hi]
    return [fmt(t, i) for i, t in enumerate(ticks)]


def test_relative_size_uses_a_log_axis_that_spreads_small_boxes(tmp_path: Path) -> None:
    dataset = _small_boxes(tmp_path)
    values = box_measures(dataset).relative_size
    assert values.max() < 0.08  # like the issue saw:: everything in the first 7% of a 0-1 axis
    fig = _figure()
    ax = fig.add_subplot()
    _plot_relative_size(box_measures(dataset))(ax)
    fig.canvas.draw()
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo <= values.min() and values.max() <= hi <= 0.2  # the axis is fitted to the boxes, not 0..1
    labels = _labels(ax.xaxis)
    assert labels and all(label.endswith("%") and "$" not in label and "^" not in label for label in labels)
    assert "1%" in labels and "5%" in labels


def test_resized_scale_follows_the_models_min_and_max_size() -> None:
    scale = resized_scale(np.array([640.0, 2000.0, 600.0, 0.0]), np.array([480.0, 500.0, 1200.0, 0.0]), MODEL)
    assert scale[0] == pytest.approx(512 / 480)  # short side to 512
    assert scale[1] == pytest.approx(864 / 2000)  # the long side would pass 864
    assert scale[2] == pytest.approx(min(512 / 600, 864 / 1200))
    assert np.isnan(scale[3])


def test_pixel_size_plot_has_stored_and_resized_panels_with_plain_ticks(tmp_path: Path) -> None:
    dataset = _small_boxes(tmp_path)
    fig = _figure()
    ax = fig.add_subplot()
    px = _pixel_sizes(dataset, MODEL)
    _plot_pixel_sizes(px, MODEL)(ax)
    fig.canvas.draw()
    panels = fig.axes
    assert len(panels) == 2
    assert "512" in panels[1].get_title() and "864" in panels[1].get_title()
    stored, resized = (np.asarray(p.collections[0].get_offsets()) for p in panels)
    assert stored[:, 0].min() == pytest.approx(8.0)
    assert resized[0, 0] == pytest.approx(stored[0, 0] * 512 / 480)
    for panel in panels:
        assert panel.get_xscale() == "log" and panel.get_yscale() == "log"
        labels = _labels(panel.xaxis)
        assert labels and all(label.replace(".", "").isdigit() for label in labels)  # 5, 10, 20, 50 - no 10^k


def test_report_writes_every_plot_with_the_model_panel(tmp_path: Path) -> None:
    dataset = _small_boxes(tmp_path)
    for image in dataset.images:
        Image.new("RGB", (image.width, image.height)).save(image.path)
    out = write_stats_report(dataset, dataset_stats(dataset), tmp_path / "report", model=MODEL)
    assert "box_size_px.png" in PLOT_FILES
    for name in PLOT_FILES:
        with Image.open(tmp_path / "report" / name) as im:
            assert im.format == "PNG"
    with Image.open(tmp_path / "report" / "box_size_px.png") as im:
        assert im.width >= 900  # two panels side by side
    assert 'src="box_size_px.png"' in out.read_text()
