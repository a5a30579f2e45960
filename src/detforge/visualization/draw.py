"""Draw boxes, class tags, polygons and masks on an image; input-agnostic (PIL + numpy, no torch).

Used for dataset galleries and for predictions alike: callers convert their own types to XYXY
pixel boxes, label strings and optional scores, class ids, polygons and boolean masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from detforge.pixels import to_rgb
from detforge.structures import BBox, Polygons
from detforge.visualization.colors import RGB, color_for, color_for_name, text_color_for

__all__ = [
    "FILL_ALPHA",
    "default_font_size",
    "default_line_width",
    "draw_boxes",
    "format_label",
    "load_font",
    "place_tag",
    "place_text",
    "text_font_size",
    "to_rgb",
]

FILL_ALPHA = 0.4
"""Opacity of mask and polygon fills (0 = invisible, 1 = opaque)."""

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def default_line_width(width: int, height: int) -> int:
    """Box line width in pixels for an image of this size: 1 px per ~330 px of the longest side, >= 1."""
    return max(1, round(0.003 * max(width, height)))


def default_font_size(width: int, height: int) -> int:
    """Tag font size in pixels for an image of this size: ~2.2% of the longest side, clamped to [10, 48]."""
    return int(min(48, max(10, round(0.022 * max(width, height)))))


@lru_cache(maxsize=32)
def load_font(size: int) -> Font:
    """PIL's bundled font at `size` pixels where this Pillow supports sizes, else its fixed bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or built without FreeType
        return ImageFont.load_default()


def format_label(label: str, score: float | None = None) -> str:
    """The tag text: the label, then the score with two decimals ("cat 0.87"); either part may be absent."""
    if score is None or not math.isfinite(float(score)):
        return label
    return f"{label} {float(score):.2f}" if label else f"{float(score):.2f}"


def place_tag(
    box: tuple[int, int, int, int], tag_size: tuple[int, int], image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Where a tag of `tag_size` (w, h) goes for an integer XYXY `box` in an image of `image_size` (w, h).

    Returns the half-open pixel rectangle (x0, y0, x1, y1), x1 = x0 + w. The tag sits on the box's
    top-left corner, above the box if there is room, else just inside its top edge; it is then
    shifted to lie inside the image (when it is larger than the image it starts at 0).
    """
    tw, th = tag_size
    iw, ih = image_size
    x = box[0]
    y = box[1] - th if box[1] - th >= 0 else box[1]
    x = max(0, min(x, iw - tw))
    y = max(0, min(y, ih - th))
    return (x, y, x + tw, y + th)


def text_font_size(box_height: float, width: int, height: int) -> int:
    """Font size in pixels of a value read, drawn beside its box: about the box's height (the written value's
    own size), at least 1.5x the tag font and at most 3x it, so it reads at a glance on any image."""
    tag = default_font_size(width, height)
    return int(min(3 * tag, max(round(1.5 * tag), round(0.9 * box_height))))


def place_text(
    box: tuple[int, int, int, int], text_size: tuple[int, int], image_size: tuple[int, int], gap: int
) -> tuple[int, int, int, int]:
    """Where the value read of integer XYXY `box` goes: a half-open (x0, y0, x1, y1) rectangle of `text_size`
    (w, h) right of the box (`gap` pixels away, top-aligned) if it fits in the image, else left of it, else
    below it; then shifted to lie inside the image."""
    tw, th = text_size
    iw, ih = image_size
    if box[2] + gap + tw <= iw:
        x, y = box[2] + gap, box[1]
    elif box[0] - gap - tw >= 0:
        x, y = box[0] - gap - tw, box[1]
    else:
        x, y = box[0], box[3] + gap
    x = max(0, min(x, iw - tw))
    y = max(0, min(y, ih - th))
    return (x, y, x + tw, y + th)


def _draw_texts(
    draw: ImageDraw.ImageDraw,
    boxes: list[tuple[int, int, int, int] | None],
    texts: Sequence[str | None],
    colors: list[RGB],
    image_size: tuple[int, int],
    lw: int,
) -> None:
    """Each value read (non-empty `texts[i]`) in large dark type on a white label outlined in its box colour."""
    w, h = image_size
    for i, box in enumerate(boxes):
        text = texts[i]
        if box is None or not text:
            continue
        font = load_font(text_font_size(box[3] - box[1], w, h))
        left, top, right, bottom = (math.ceil(v) for v in draw.textbbox((0, 0), text, font=font))
        pad = max(2, lw)
        size = (right - left + 2 * pad, bottom - top + 2 * pad)
        x0, y0, x1, y1 = place_text(box, size, (w, h), gap=max(2, 2 * lw))
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(255, 255, 255), outline=colors[i], width=max(1, lw))
        draw.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=(0, 0, 0))


def _check_lengths(n: int, name: str, value: Sequence[object] | None) -> None:
    if value is not None and len(value) != n:
        raise ValueError(f"draw_boxes: {name} has {len(value)} items, expected one per box ({n})")


def _as_boxes(boxes: Sequence[BBox] | np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"draw_boxes: boxes must have shape [N, 4] (XYXY pixels), got shape {list(arr.shape)}")
    return arr


def _mask_edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with at least one 4-neighbour outside it (the outline), [H, W] bool."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def _fill_layer(
    size: tuple[int, int],
    colors: list[RGB],
    polygons: Sequence[Polygons | None] | None,
    masks: np.ndarray | None,
) -> Image.Image:
    """A transparent RGBA layer of `size` (w, h) with masks and polygons filled in their colours at FILL_ALPHA."""
    w, h = size
    alpha = round(255 * FILL_ALPHA)
    layer = np.zeros((h, w, 4), dtype=np.uint8)
    if masks is not None:
        for i, mask in enumerate(masks):
            layer[mask] = (*colors[i], alpha)
    overlay = Image.fromarray(layer, "RGBA")
    if polygons is not None:
        draw = ImageDraw.Draw(overlay)
        for i, poly in enumerate(polygons):
            for pts in _polygon_points(poly):
                draw.polygon(pts, fill=(*colors[i], alpha))
    return overlay


def _polygon_points(poly: Polygons | None) -> list[list[tuple[float, float]]]:
    """The finite polygons of `poly` as point lists (empty for None)."""
    if poly is None:
        return []
    return [
        [(flat[j], flat[j + 1]) for j in range(0, len(flat) - 1, 2)]
        for flat in poly.points
        if all(math.isfinite(v) for v in flat)
    ]


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[BBox] | np.ndarray,
    labels: Sequence[str],
    *,
    scores: Sequence[float] | None = None,
    class_ids: Sequence[int] | None = None,
    polygons: Sequence[Polygons | None] | None = None,
    masks: np.ndarray | None = None,
    line_width: int | None = None,
    texts: Sequence[str | None] | None = None,
) -> Image.Image:
    """Return a new RGB image with every object drawn; `image` is left untouched.

    `boxes` are [N, 4] XYXY in pixels of `image`; `labels[i]` is the tag text of box i (followed by
    `scores[i]` as "0.87" when given). Colours come from the palette by `class_ids[i]`, or, without
    class ids, from the label text. `polygons[i]` (pixel coordinates) and `masks[i]` ([N, H, W]
    bool, H x W = image size) are filled translucently in the same colour. Line width and font size
    scale with the image unless `line_width` is given; tags always lie inside the image. `texts[i]` (the
    value read in box i; None or "" draws nothing) is written beside the box in large dark type on a white
    label outlined in the box's colour (`place_text`, `text_font_size`). Grayscale,
    palette and RGBA inputs are converted (transparency onto white). Non-finite boxes are skipped.
    """
    base = to_rgb(image)
    w, h = base.size
    arr = _as_boxes(boxes)
    n = len(arr)
    _check_lengths(n, "labels", labels)
    _check_lengths(n, "scores", scores)
    _check_lengths(n, "class_ids", class_ids)
    _check_lengths(n, "polygons", polygons)
    _check_lengths(n, "texts", texts)
    mask_arr: np.ndarray | None = None
    if masks is not None:
        mask_arr = np.asarray(masks).astype(bool, copy=False)
        if mask_arr.shape != (n, h, w):
            raise ValueError(
                f"draw_boxes: masks must have shape [N, H, W] = {[n, h, w]} (one per box, image size), "
                f"got {list(mask_arr.shape)}"
            )
    if line_width is not None and line_width < 1:
        raise ValueError(f"draw_boxes: line_width must be >= 1 pixel, got {line_width}")
    if n == 0:
        return base

    colors = [color_for(class_ids[i]) if class_ids is not None else color_for_name(labels[i]) for i in range(n)]
    lw = line_width if line_width is not None else default_line_width(w, h)

    if mask_arr is not None or polygons is not None:
        overlay = _fill_layer((w, h), colors, polygons, mask_arr)
        base = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
    if mask_arr is not None:
        pixels = np.array(base)
        for i, mask in enumerate(mask_arr):
            pixels[_mask_edges(mask)] = colors[i]
        base = Image.fromarray(pixels, "RGB")

    draw = ImageDraw.Draw(base)
    if polygons is not None:
        for i, poly in enumerate(polygons):
            for pts in _polygon_points(poly):
                draw.line([*pts, pts[0]], fill=colors[i], width=max(1, lw // 2))

    int_boxes: list[tuple[int, int, int, int] | None] = []
    lo_x, hi_x, lo_y, hi_y = -lw - 1, w + lw, -lw - 1, h + lw
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in arr[i])
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            int_boxes.append(None)
            continue
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        ib = (
            round(min(max(x0, lo_x), hi_x)),
            round(min(max(y0, lo_y), hi_y)),
            round(min(max(x1, lo_x), hi_x)),
            round(min(max(y1, lo_y), hi_y)),
        )
        draw.rectangle(ib, outline=colors[i], width=lw)
        inside = ib[2] >= 0 and ib[3] >= 0 and ib[0] < w and ib[1] < h
        int_boxes.append(ib if inside else None)

    font = load_font(default_font_size(w, h))
    pad = max(1, lw)
    for i, maybe_box in enumerate(int_boxes):
        text = format_label(labels[i], scores[i] if scores is not None else None)
        if maybe_box is None or not text:
            continue
        left, top, right, bottom = (math.ceil(v) for v in draw.textbbox((0, 0), text, font=font))
        tag = place_tag(maybe_box, (right - left + 2 * pad, bottom - top + 2 * pad), (w, h))
        draw.rectangle((tag[0], tag[1], tag[2] - 1, tag[3] - 1), fill=colors[i])
        draw.text((tag[0] + pad - left, tag[1] + pad - top), text, font=font, fill=text_color_for(colors[i]))
    if texts is not None:
        _draw_texts(draw, int_boxes, texts, colors, (w, h), lw)
    return base
