"""The "Reading" section of the evaluation report: read accuracy and the most common misreads with crops.

Crops are cut from the photos around the detection box that was read and written to `misreads/*.jpg`
(atomically); an unreadable photo is noted in place of its crop. Every user string is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.evaluation.text_metrics import MisreadExample, ReadMetrics
from detforge.fileio import atomic_write_bytes
from detforge.structures import ImageRecord

__all__ = ["CROP_HEIGHT", "crop_box", "read_section_html"]

CROP_HEIGHT = 64
"""Height in pixels of the misread crops in the report (width follows, at most 6x the height)."""

_PAD = 0.25  # context around the box, as a share of its height, on every side
_E = html.escape


def crop_box(image: Image.Image, box: Sequence[float], *, height: int = CROP_HEIGHT) -> Image.Image:
    """The part of `image` inside `box` (XYXY pixels) plus a quarter of its height of context on every side,
    clipped to the image, scaled to `height` pixels high (at most 6 x `height` wide). ValueError for a box
    that lies outside the image or has no area."""
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = _PAD * max(y1 - y0, 1.0)
    left, top = max(0, math.floor(x0 - pad)), max(0, math.floor(y0 - pad))
    right, bottom = min(image.width, math.ceil(x1 + pad)), min(image.height, math.ceil(y1 + pad))
    if right <= left or bottom <= top:
        raise ValueError(f"box {[x0, y0, x1, y1]} has no area inside the {image.width}x{image.height} image")
    crop = image.crop((left, top, right, bottom)).convert("RGB")
    width = max(1, min(6 * height, round(crop.width * height / crop.height)))
    return crop.resize((width, height), Image.Resampling.BILINEAR)


def _crop_html(out: Path, rel: str, picture: Image.Image | None, example: MisreadExample, error: str | None) -> str:
    score = f", text score {example.text_score:.2f}" if example.text_score is not None else ""
    title = _E(f"image {example.image_id}, box {[round(v) for v in example.box]}{score}", quote=True)
    if picture is None:
        return (
            f'<span class="unreadable" title="{title}">cannot show image {example.image_id}: {_E(error or "")}</span>'
        )
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=90)
    atomic_write_bytes(out / rel, buf.getvalue())
    return f'<img class="crop" src="{rel}" alt="{title}" title="{title}">'


def _metrics_table(read: ReadMetrics) -> str:
    def pct(v: float) -> str:
        return f"{v:.3f}" if math.isfinite(v) else "-"

    rows = [
        ("exact accuracy", pct(read.exact_accuracy), f"{read.num_exact} of {read.num_matched} matched boxes"),
        ("character error rate", pct(read.cer), f"{read.num_edits} edits over {read.num_chars} characters"),
        ("end-to-end recall", pct(read.end_to_end_recall), f"{read.num_exact} of {read.num_labelled} labelled boxes"),
        ("detection recall", pct(read.detection_recall), f"{read.num_matched} of {read.num_labelled} labelled boxes"),
        ("page accuracy", pct(read.page_accuracy), f"{read.num_images_exact} of {read.num_images} images"),
    ]
    body = "".join(f"<tr><td>{_E(a)}</td><td>{b}</td><td>{_E(c)}</td></tr>" for a, b, c in rows)
    return f"<table><thead><tr><th>metric</th><th>value</th><th>from</th></tr></thead><tbody>{body}</tbody></table>"


def read_section_html(out: Path, read: ReadMetrics, images: Sequence[ImageRecord], *, max_misreads: int = 12) -> str:
    """The HTML of the "Reading" section for `read`; writes the crops of the first `max_misreads` misreads
    (all their examples) under `out/misreads/`."""
    by_id = {im.id: im for im in images}
    classes = ", ".join(_E(c) for c in read.classes)
    intro = (
        f"<p>Values read in the boxes of {classes}, compared after normalisation (NFKC, whitespace removed), "
        f"at IoU {read.iou:g} and score &gt;= {read.score_threshold:.3f}. Exact accuracy and CER are measured on "
        "labelled boxes a detection matched; end-to-end recall counts a labelled box only when it is both "
        "detected and read exactly (its ceiling is the detection recall); a page is right when the values "
        "read on it equal the labelled ones.</p>"
    )
    if not read.misreads:
        return intro + _metrics_table(read) + "<p>No misreads.</p>"
    loaded: dict[int, Image.Image | str] = {}
    rows = []
    for rank, misread in enumerate(read.misreads[:max_misreads], start=1):
        crops = []
        for j, example in enumerate(misread.examples):
            if example.image_id not in loaded:
                try:
                    loaded[example.image_id] = load_image(by_id[example.image_id].path)
                except (OSError, DetforgeError, KeyError) as e:
                    loaded[example.image_id] = str(e)
            photo = loaded[example.image_id]
            picture, error = None, photo if isinstance(photo, str) else None
            if isinstance(photo, Image.Image):
                try:
                    picture = crop_box(photo, example.box)
                except ValueError as e:
                    error = str(e)
            rel = f"misreads/{rank:03d}_{j}_image_{example.image_id}.jpg"
            crops.append(_crop_html(out, rel, picture, example, error))
        read_as = f"<code>{_E(misread.read)}</code>" if misread.read else "<i>nothing</i>"
        rows.append(
            f"<tr><td><code>{_E(misread.truth)}</code></td><td>{read_as}</td><td>{misread.count}</td>"
            f"<td>{' '.join(crops)}</td></tr>"
        )
    shown = min(len(read.misreads), max_misreads)
    head = "<tr><th>labelled</th><th>read as</th><th>boxes</th><th>examples</th></tr>"
    return (
        intro
        + _metrics_table(read)
        + f"<h3>Most common misreads</h3><p>{read.num_misread} matched boxes misread; the {shown} most common "
        "label/value pairs:</p>" + f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )
