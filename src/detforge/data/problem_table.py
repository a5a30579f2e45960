"""Browser-side filters for the HTML reports (gallery, statistics): by class, subset and problem.

Plain HTML attributes and a small inline script, no external assets. Every filterable element has the
attributes `data-classes`, `data-subsets` and `data-problems`, each a JSON array of strings; the page's
`<select data-filter="classes|subsets|problems">` controls hide (the `hidden` attribute) the elements that
do not hold the chosen value (all controls at once; "(all)" matches everything). An empty
`<span class="filter-data" ...>` carries the attributes for its parent element (which is then hidden).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from detforge.data.dataset import Dataset
from detforge.structures import Problem

__all__ = ["FILTER_SCRIPT", "FILTER_STYLE", "NO_SUBSET", "filter_attributes", "filter_controls", "problem_table"]

NO_SUBSET = "(none)"
"""The subset value of images without a subset."""

FILTER_STYLE = """.filters { margin: 1em 0; padding: 0.5em; background: #f6f6f6; }
.filters label { margin-right: 1.2em; }
[data-classes][hidden], .filter-parent[hidden] { display: none; }"""

FILTER_SCRIPT = """<script>
(function () {
  var controls = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-classes]"));
  var counter = document.getElementById("filter-count");
  function values(item, key) {
    try { return JSON.parse(item.getAttribute("data-" + key) || "[]"); } catch (e) { return []; }
  }
  function apply() {
    var shown = 0;
    items.forEach(function (item) {
      var keep = controls.every(function (c) {
        return c.value === "" || values(item, c.getAttribute("data-filter")).indexOf(c.value) >= 0;
      });
      var target = item.classList.contains("filter-data") ? item.parentElement : item;
      target.classList.add("filter-parent");
      target.hidden = !keep;
      if (keep) { shown += 1; }
    });
    if (counter) { counter.textContent = shown + " of " + items.length + " shown"; }
  }
  controls.forEach(function (c) { c.addEventListener("change", apply); });
  apply();
})();
</script>"""


def _json_attr(values: Iterable[str]) -> str:
    return html.escape(json.dumps(sorted(set(values)), ensure_ascii=False), quote=True)


def filter_attributes(classes: Iterable[str], subsets: Iterable[str], problems: Iterable[str]) -> str:
    """` data-classes="[...]" data-subsets="[...]" data-problems="[...]"` for one filterable element."""
    return (
        f' data-classes="{_json_attr(classes)}" data-subsets="{_json_attr(subsets)}"'
        f' data-problems="{_json_attr(problems)}"'
    )


def _select(key: str, title: str, options: Iterable[str]) -> str:
    items = "".join(
        f'<option value="{html.escape(o, quote=True)}">{html.escape(o)}</option>' for o in sorted(set(options))
    )
    return (
        f'<label>{html.escape(title)} <select data-filter="{key}" name="{key}">'
        f'<option value="">(all)</option>{items}</select></label>'
    )


def filter_controls(classes: Iterable[str], subsets: Iterable[str], problems: Iterable[str]) -> str:
    """The three `<select>` controls (class, subset, problem code) and the "N of M shown" counter."""
    return (
        '<div class="filters">'
        + _select("classes", "class", classes)
        + _select("subsets", "subset", subsets)
        + _select("problems", "problem", problems)
        + '<span id="filter-count"></span></div>'
    )


def problem_table(dataset: Dataset, problems: Iterable[Problem]) -> str:
    """A table of `problems` (severity, code, where, message), one filterable row each: its class is the
    annotation's (or every class of its image), its subset the image's."""
    e = html.escape
    images = {im.id: im for im in dataset.images}
    names = {c.id: c.name for c in dataset.categories}
    anns = {a.id: a for a in dataset.annotations}
    rows: list[str] = []
    for p in problems:
        image = images.get(p.image_id) if p.image_id is not None else None
        ann = anns.get(p.annotation_id) if p.annotation_id is not None else None
        if ann is not None:
            classes = [names.get(ann.category_id, f"id {ann.category_id}")]
        elif image is not None:
            classes = [names.get(a.category_id, f"id {a.category_id}") for a in dataset.annotations_of(image.id)]
        else:
            classes = []
        subsets = [(image.subset or NO_SUBSET)] if image is not None else []
        where = e(str(p.location)) if p.location else ""
        rows.append(
            f"<tr{filter_attributes(classes, subsets, [p.code])}>"
            f"<td>{e(p.severity)}</td><td>{e(p.code)}</td><td>{where}</td><td>{e(p.message)}</td></tr>"
        )
    if not rows:
        return "<p>No problems found.</p>"
    head = "<tr><th>severity</th><th>problem</th><th>where</th><th>message</th></tr>"
    return f'<table class="problems"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
