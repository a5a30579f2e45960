"""The dataset statistics report: PNG plots and an `index.html` that embeds them with the tables.

Plots are drawn with matplotlib's Agg canvas created inside each call (pyplot and the global
backend are never touched). Every file is written atomically; every user string in the HTML
is escaped.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detforge.data.dataset import Dataset
from detforge.data.stats import BoxMeasures, DatasetStats, Quantiles, box_measures, subset_label
from detforge.data.stats_text import TextStats
from detforge.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PLOT_FILES", "write_stats_report"]

PLOT_FILES = (
    "instances_per_class.png",
    "boxes_per_image.png",
    "relative_box_size.png",
    "aspect_ratio.png",
    "box_centers.png",
)
"""The plots `write_stats_report` writes, in the order the report shows them."""

_MAX_CLASS_BARS = 60


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

    def draw(ax: Axes) -> None:
        if values.size == 0:
            return _no_data(ax)
        ax.hist(np.clip(values, 0.0, 1.0), bins=50, range=(0.0, 1.0), color="#009E73")
        ax.set_xlabel("sqrt(box area / image area)  (values above 1 shown at 1)")
        ax.set_ylabel("boxes")
        ax.set_title("Relative box size")

    return draw


def _plot_aspect_ratio(m: BoxMeasures) -> Callable[[Axes], None]:
    values = np.clip(m.aspect_ratio, 0.01, 100.0)

    def draw(ax: Axes) -> None:
        if values.size == 0:
            return _no_data(ax)
        lo, hi = float(values.min()), float(values.max())
        lo, hi = (lo / 1.5, hi * 1.5) if hi / lo < 1.5 else (lo, hi)
        ax.hist(values, bins=[float(e) for e in np.geomspace(lo, hi, 41)], color="#CC79A7")
        ax.set_xscale("log")
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


def _html_table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _bar_rows(items: list[tuple[str, int]]) -> str:
    """Table rows of a label, a count and a bar proportional to the count (an HTML histogram)."""
    top = max((n for _, n in items), default=0) or 1
    return "".join(
        f"<tr><td>{html.escape(label)}</td><td>{n}</td>"
        f'<td class="bar"><span style="width:{100.0 * n / top:.1f}%"></span></td></tr>'
        for label, n in items
    )


def _text_html(text: TextStats) -> str:
    """The transcriptions section: boxes with, blank and without text per class, value lengths, characters."""
    if text.num_with_text == 0 and text.num_blank == 0:
        return "<h2>Transcriptions</h2>\n<p>No box has text.</p>"
    class_rows: list[list[object]] = [[c.name, c.with_text, c.blank, c.without_text] for c in text.classes]
    class_rows.append(["(all)", text.num_with_text, text.num_blank, text.num_without_text])
    n = text.lengths
    lengths = [(str(k), v) for k, v in enumerate(n.histogram) if k >= (n.min or 0)]
    chars = [(f"{c.char!r} {c.name or '(no name)'}", c.count) for c in text.characters]
    attribute = f"; read from the attribute {html.escape(repr(text.attribute))}" if text.attribute else ""
    return f"""<h2>Transcriptions</h2>
<p>{text.num_distinct_values} distinct values; read classes (with at least one text):
{html.escape(", ".join(text.read_classes)) or "-"}{attribute}. Blank: only whitespace. Lengths and characters are
counted on the normalised values (NFKC, whitespace removed).</p>
{_html_table(["class", "with text", "blank", "without text"], class_rows)}
<h3>Text length (characters): min {_fmt(n.min)}, median {_fmt(n.median)}, max {_fmt(n.max)}</h3>
<table><thead><tr><th>length</th><th>values</th><th></th></tr></thead><tbody>{_bar_rows(lengths)}</tbody></table>
<h3>Characters ({len(text.characters)} distinct)</h3>
<table><thead><tr><th>character</th><th>count</th><th></th></tr></thead><tbody>{_bar_rows(chars)}</tbody></table>"""


def _html(dataset: Dataset, stats: DatasetStats) -> str:
    subsets = stats.subsets
    class_rows: list[list[object]] = [
        [c.name, *(s.instances_per_class.get(c.name, 0) for s in subsets), c.instances, c.images,
         c.sizes.small, c.sizes.medium, c.sizes.large]
        for c in stats.classes
    ]  # fmt: skip
    b = stats.box_sizes
    totals = [stats.num_annotations, "", b.small, b.medium, b.large]
    class_rows.append(["(all)", *(s.annotations for s in subsets), *totals])
    class_rows.append(["(images)", *(s.images for s in subsets), stats.num_images, "", "", "", ""])
    class_headers = ["class", *(subset_label(s.name) for s in subsets), "total", "images", "small", "medium", "large"]
    quantiles: list[tuple[str, Quantiles]] = [
        ("relative size sqrt(box/image)", stats.relative_size),
        ("aspect ratio w/h", stats.aspect_ratio),
        ("image width (px)", stats.image_width),
        ("image height (px)", stats.image_height),
    ]
    q_rows: list[list[object]] = [
        [name, q.count, *(_fmt(v) for v in (q.mean, q.min, q.p05, q.p25, q.p50, q.p75, q.p95, q.max))]
        for name, q in quantiles
    ]
    size_rows: list[list[object]] = [[f"{s.width}x{s.height}", s.count] for s in stats.image_sizes]
    bpi = stats.boxes_per_image
    facts = [
        ("dataset", f"{dataset.root} ({dataset.format})"),
        ("images", f"{stats.num_images} ({stats.num_empty_images} without objects, "
                   f"{stats.num_unknown_size_images} of unknown size)"),
        ("annotations", f"{stats.num_annotations} ({stats.num_invalid_boxes} invalid boxes)"),
        ("boxes per image", f"min {bpi.min}, median {_fmt(bpi.median)}, mean {bpi.mean:.2f}, max {bpi.max}"),
        ("distinct image sizes", str(stats.num_distinct_image_sizes)),
    ]  # fmt: skip
    plots = "".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(name[:-4].replace("_", " "))}"></figure>'
        for name in PLOT_FILES
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>detforge dataset statistics</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}
td:not(:first-child) {{ text-align: right; font-variant-numeric: tabular-nums; }}
th {{ background: #f2f2f2; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
figure img {{ max-width: 640px; }}
td.bar {{ width: 240px; }}
td.bar span {{ display: block; height: 0.9em; background: #56B4E9; }}
</style></head><body>
<h1>Dataset statistics</h1>
{_html_table(["", ""], [list(f) for f in facts])}
<h2>Classes by subset and box size</h2>
<p>Box size by COCO's area rule on the box area: small &lt; 32&sup2; &le; medium &lt; 96&sup2; &le; large px.</p>
{_html_table(class_headers, class_rows)}
<h2>Box and image sizes</h2>
{_html_table(["measure", "count", "mean", "min", "p5", "p25", "p50", "p75", "p95", "max"], q_rows)}
{_html_table(["image size (w x h)", "images"], size_rows)}
{_text_html(stats.text)}
<h2>Plots</h2>
{plots}
<p><a href="stats.json">stats.json</a> holds every number above.</p>
</body></html>
"""


def write_stats_report(dataset: Dataset, stats: DatasetStats, out_dir: str | Path) -> Path:
    """Write the plots (`PLOT_FILES`), `stats.json` and `index.html` into `out_dir`; return the HTML path.

    `stats` must be `dataset_stats(dataset)`; the histograms are computed from `dataset` itself.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    measures = box_measures(dataset)
    instances, instances_size = _plot_instances(stats)
    _save_plot(out / PLOT_FILES[0], instances, instances_size)
    _save_plot(out / PLOT_FILES[1], _plot_boxes_per_image(stats))
    _save_plot(out / PLOT_FILES[2], _plot_relative_size(measures))
    _save_plot(out / PLOT_FILES[3], _plot_aspect_ratio(measures))
    _save_plot(out / PLOT_FILES[4], _plot_centers(measures), (5.6, 4.8))
    atomic_write_json(out / "stats.json", stats.to_json())
    return atomic_write_text(out / "index.html", _html(dataset, stats))
