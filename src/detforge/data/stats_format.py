"""Dataset statistics as terminal text: aligned tables of classes, subsets, box sizes, quantiles and transcriptions."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detforge.data.stats import DatasetStats
    from detforge.data.stats_text import TextStats

__all__ = ["format_stats", "format_text_stats", "format_text_table", "subset_label"]

_MAX_CHARACTER_ROWS = 40


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table: the first column left-aligned, the others right-aligned; control
    characters in cells are shown escaped so a cell never breaks the layout."""
    cells = [[_printable(str(h)) for h in headers]] + [[_printable(str(c)) for c in row] for row in rows]
    widths = [max(_display_width(row[j]) for row in cells) for j in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = []
        for j, cell in enumerate(row):
            pad = " " * (widths[j] - _display_width(cell))
            parts.append(cell + pad if j == 0 else pad + cell)
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def subset_label(name: str | None) -> str:
    """How a subset is named in tables and reports ("(no subset)" for images without one)."""
    return "(no subset)" if name is None else name


def format_stats(stats: DatasetStats) -> str:
    """Readable terminal text: a summary, a classes x subsets table, a box size table, size quantiles,
    image sizes and the transcriptions (`format_text_stats`)."""
    bpi = stats.boxes_per_image
    summary = [
        f"images: {stats.num_images} ({stats.num_empty_images} without objects, "
        f"{stats.num_unknown_size_images} of unknown size)",
        f"annotations: {stats.num_annotations} ({stats.num_invalid_boxes} invalid boxes)",
        f"boxes per image: min {bpi.min}, median {_num(bpi.median)}, mean {bpi.mean:.2f}, max {bpi.max}",
        f"distinct image sizes: {stats.num_distinct_image_sizes}",
    ]
    subsets = stats.subsets
    class_rows: list[list[object]] = []
    for c in stats.classes:
        class_rows.append([c.name, *(s.instances_per_class.get(c.name, 0) for s in subsets), c.instances, c.images])
    class_rows.append(["(all objects)", *(s.annotations for s in subsets), stats.num_annotations, ""])
    class_rows.append(["(images)", *(s.images for s in subsets), stats.num_images, ""])
    class_rows.append(["(empty images)", *(s.empty_images for s in subsets), stats.num_empty_images, ""])
    classes = format_text_table(["class", *(subset_label(s.name) for s in subsets), "total", "images"], class_rows)

    size_rows: list[list[object]] = [
        [c.name, c.sizes.small, c.sizes.medium, c.sizes.large, c.sizes.total] for c in stats.classes
    ]
    b = stats.box_sizes
    size_rows.append(["(all)", b.small, b.medium, b.large, b.total])
    sizes = format_text_table(["class", "small", "medium", "large", "valid boxes"], size_rows)

    q_rows = []
    for label, q in (
        ("relative size sqrt(box/image)", stats.relative_size),
        ("aspect ratio w/h", stats.aspect_ratio),
        ("image width (px)", stats.image_width),
        ("image height (px)", stats.image_height),
    ):
        q_rows.append([label, q.count, *(_num(v) for v in (q.mean, q.min, q.p05, q.p25, q.p50, q.p75, q.p95, q.max))])
    quantiles = format_text_table(["measure", "count", "mean", "min", "p5", "p25", "p50", "p75", "p95", "max"], q_rows)
    image_sizes = format_text_table(
        ["image size (w x h)", "images"], [[f"{s.width}x{s.height}", s.count] for s in stats.image_sizes]
    )
    sections = ["\n".join(summary), classes, sizes, quantiles, image_sizes, format_text_stats(stats.text)]
    return "\n\n".join(sections) + "\n"


def _char_label(char: str) -> str:
    return repr(char) if char.isprintable() else repr(char)[1:-1]


def format_text_stats(stats: TextStats) -> str:
    """The transcriptions as terminal text: one line when no box has text, else boxes with, blank and
    without text per class, the value lengths (min, median, max and a histogram) and the characters
    (most frequent first, at most 40 rows)."""
    if stats.num_with_text == 0 and stats.num_blank == 0:
        return "transcriptions: none (no box has text)"
    summary = (
        f"transcriptions: {stats.num_with_text} boxes with text, {stats.num_blank} blank, "
        f"{stats.num_without_text} without; {stats.num_distinct_values} distinct values; "
        f"read classes: {', '.join(stats.read_classes) or '-'}"
        + (f"; attribute {stats.attribute!r}" if stats.attribute else "")
    )
    classes = format_text_table(
        ["class", "with text", "blank", "without text"],
        [[c.name, c.with_text, c.blank, c.without_text] for c in stats.classes],
    )
    n = stats.lengths
    lengths = f"text length (characters): min {_num(n.min)}, median {_num(n.median)}, max {_num(n.max)}"
    if n.histogram:
        lengths += "\n" + format_text_table(
            ["length", "values"], [[k, v] for k, v in enumerate(n.histogram) if k >= (n.min or 0)]
        )
    shown = stats.characters[:_MAX_CHARACTER_ROWS]
    chars = format_text_table(
        [f"character ({len(stats.characters)} distinct)", "count"],
        [[f"{_char_label(c.char)} {c.name or '(no name)'}", c.count] for c in shown],
    )
    if len(stats.characters) > len(shown):
        chars += f"\n... {len(stats.characters) - len(shown)} more characters (--json lists them all)"
    return "\n\n".join([summary, classes, lengths, chars])
