"""Class colours: a fixed colour-blind-friendly palette and the text colour that reads best on each.

The first seven colours are the Okabe-Ito set (black left out: it vanishes on dark photos), the
next nine Paul Tol's "muted" scheme; both were designed to stay distinguishable under the common
forms of colour blindness. Colours are cycled by class id, so class `i` has the same colour in
every image, gallery and prediction drawing.
"""

from __future__ import annotations

import zlib

__all__ = ["PALETTE", "RGB", "color_for", "color_for_name", "contrast_ratio", "relative_luminance", "text_color_for"]

RGB = tuple[int, int, int]
"""A colour as (red, green, blue), each 0..255."""


def _hex(code: str) -> RGB:
    return (int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16))


PALETTE: tuple[RGB, ...] = tuple(
    _hex(c)
    for c in (
        # Okabe-Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple
        "E69F00", "56B4E9", "009E73", "F0E442", "0072B2", "D55E00", "CC79A7",
        # Tol muted: rose, indigo, sand, green, cyan, wine, teal, olive, purple
        "CC6677", "332288", "DDCC77", "117733", "88CCEE", "882255", "44AA99", "999933", "AA4499",
    )
)  # fmt: skip
"""The class palette, cycled by class id."""

BLACK: RGB = (0, 0, 0)
WHITE: RGB = (255, 255, 255)


def color_for(class_id: int) -> RGB:
    """The palette colour of a class id (any int; negative ids cycle too)."""
    return PALETTE[int(class_id) % len(PALETTE)]


def color_for_name(name: str) -> RGB:
    """A palette colour that depends only on the label text (stable across runs and processes)."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]


def relative_luminance(color: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour, in [0, 1]."""

    def channel(v: int) -> float:
        c = v / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio between two colours, in [1, 21]."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def text_color_for(background: RGB) -> RGB:
    """Black or white, whichever has the higher contrast on `background`."""
    return BLACK if contrast_ratio(background, BLACK) >= contrast_ratio(background, WHITE) else WHITE
