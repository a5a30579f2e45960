"""The dataset statistics report: an `index.html` with the tables, the plots (`stats_plots`) and the
dataset's problems (filterable in the browser by class, subset and problem).

Every file is written atomically; every user string in the HTML is escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from detforge.data.dataset import Dataset
from detforge.data.problem_table import FILTER_SCRIPT, FILTER_STYLE, NO_SUBSET, filter_controls, problem_table
from detforge.data.stats import DatasetStats, Quantiles, subset_label
from detforge.data.stats_plots import PLOT_FILES, ModelInput, write_plots
from detforge.data.stats_text import TextStats
from detforge.fileio import atomic_write_json, atomic_write_text

__all__ = ["PLOT_FILES", "ModelInput", "write_stats_report"]


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


def _problems_html(dataset: Dataset) -> str:
    """The problems `data check` reports without opening images (reader's and annotation checks), filterable."""
    from detforge.data.check import check_dataset

    problems = check_dataset(dataset, images=False, leakage=False).problems
    classes = [c.name for c in dataset.categories]
    subsets = sorted({im.subset or NO_SUBSET for im in dataset.images})
    controls = filter_controls(classes, subsets, [p.code for p in problems]) if problems else ""
    return f"""<h2>Problems ({len(problems)})</h2>
<p>What <code>detforge data check</code> finds without opening the images; filter by class, subset or problem.</p>
{controls}
{problem_table(dataset, problems)}"""


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
table.problems td {{ text-align: left; }}
{FILTER_STYLE}
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
{_problems_html(dataset)}
{FILTER_SCRIPT}
</body></html>
"""


def write_stats_report(
    dataset: Dataset, stats: DatasetStats, out_dir: str | Path, *, model: ModelInput | None = None
) -> Path:
    """Write the plots (`PLOT_FILES`), `stats.json` and `index.html` into `out_dir`; return the HTML path.

    `stats` must be `dataset_stats(dataset)`; the histograms are computed from `dataset` itself. With
    `model`, the box-size plot also shows the sizes after that model's resize. The page lists the problems
    `data check` finds without opening images, with class/subset/problem filters.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_plots(dataset, stats, out, model)
    atomic_write_json(out / "stats.json", stats.to_json())
    return atomic_write_text(out / "index.html", _html(dataset, stats))
