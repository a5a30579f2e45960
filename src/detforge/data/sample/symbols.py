"""Pen-drawn symbols (= + - . ) ( / №), letters, cursive scribbles, underlines and circles.

Shapes are laid out in output pixels around the pen position on the baseline (x right, y down,
baseline y = 0) and rendered by `pen.draw_glyph`.
"""

from __future__ import annotations

import math

import numpy as np

from detforge.data.sample.pen import Glyph, Pen, Stroke, draw_glyph, smooth, wobbly

__all__ = ["LETTERS", "SYMBOLS", "letter_glyph", "line_glyph", "loop_glyph", "scribble_glyph", "symbol_glyph"]

SYMBOLS = ("-", "=", "+", "*", ".", ",", ")", "(", "/", "N")
"""Symbols `symbol_glyph` draws; "*" is a multiplication dot and "N" the "№" sign."""

# Letter strokes in a unit box: x 0..1 across the letter, y 0 (top) .. 1 (baseline); `tall` letters
# reach the full line height, the others the x-height.
_LETTERS: dict[str, tuple[bool, tuple[tuple[tuple[float, float], ...], ...]]] = {
    "v": (False, (((0.0, 0.0), (0.5, 1.0), (1.0, 0.0)),)),
    "x": (False, (((0.0, 0.0), (1.0, 1.0)), ((1.0, 0.0), (0.0, 1.0)))),
    "a": (
        False,
        (((0.85, 0.2), (0.5, 0.0), (0.05, 0.5), (0.4, 1.0), (0.85, 0.6)), ((0.85, 0.0), (0.85, 0.9), (1.0, 1.0))),
    ),
    "m": (
        False,
        (
            ((0.0, 1.0), (0.02, 0.15), (0.2, 0.0), (0.38, 0.15), (0.4, 1.0)),
            ((0.4, 0.3), (0.6, 0.0), (0.8, 0.15), (0.82, 1.0)),
        ),
    ),
    "s": (False, (((0.9, 0.1), (0.5, 0.0), (0.1, 0.25), (0.5, 0.5), (0.9, 0.75), (0.5, 1.0), (0.05, 0.85)),)),
    "t": (True, (((0.45, 0.0), (0.4, 0.9), (0.6, 1.0), (0.85, 0.9)), ((0.05, 0.38), (0.85, 0.35)))),
    "F": (True, (((0.2, 0.0), (0.15, 1.0)), ((0.2, 0.02), (0.95, 0.0)), ((0.18, 0.48), (0.75, 0.45)))),
    "h": (True, (((0.1, 0.0), (0.1, 1.0)), ((0.1, 0.65), (0.45, 0.4), (0.8, 0.5), (0.82, 1.0)))),
    "R": (
        True,
        (((0.1, 1.0), (0.1, 0.0), (0.7, 0.05), (0.85, 0.25), (0.6, 0.5), (0.1, 0.5)), ((0.45, 0.5), (0.95, 1.0))),
    ),
    "E": (True, (((0.9, 0.05), (0.15, 0.0), (0.1, 1.0), (0.9, 1.0)), ((0.12, 0.5), (0.7, 0.48)))),
}
LETTERS = tuple(_LETTERS)
"""Letters `letter_glyph` draws (variable names in formulas)."""


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def letter_glyph(rng: np.random.Generator, letter: str, height: float, pen: Pen) -> Glyph:
    """A handwritten `letter` (one of LETTERS) on a line whose digits are `height` px tall."""
    if letter not in _LETTERS:
        raise ValueError(f"letter: expected one of {LETTERS}, got {letter!r}")
    tall, shapes = _LETTERS[letter]
    h = height * (rng.uniform(0.9, 1.05) if tall else rng.uniform(0.55, 0.68))
    w = h * (rng.uniform(0.55, 0.75) if tall else rng.uniform(0.8, 1.0))
    strokes: list[Stroke] = []
    for shape in shapes:
        unit = np.asarray(shape, dtype=np.float64)
        pts = np.stack([unit[:, 0] * w, (unit[:, 1] - 1.0) * h], axis=1) + rng.normal(0, 0.04, unit.shape) * [w, h]
        strokes.append((smooth(pts) if len(shape) > 2 else wobbly(rng, pts, 0.02 * h), pen.width))
    return draw_glyph(strokes, [], w + height * rng.uniform(0.15, 0.3), rng.normal(0.0, 2.5), pen.slant)


def symbol_glyph(rng: np.random.Generator, symbol: str, height: float, pen: Pen) -> Glyph:
    """A pen-drawn `symbol` (one of SYMBOLS) scaled to a line whose digits are `height` px tall."""
    if symbol not in SYMBOLS:
        raise ValueError(f"symbol: expected one of {SYMBOLS}, got {symbol!r}")
    h = height
    widths = {"-": 0.6, "=": 0.6, "+": 0.6, "*": 0.2, ".": 0.18, ",": 0.2, ")": 0.3, "(": 0.3, "/": 0.5, "N": 1.15}
    w = h * widths[symbol] * rng.uniform(0.85, 1.15)
    pw = pen.width
    wob = 0.03 * h
    mid = -0.5 * h + rng.normal(0, 0.04 * h)
    strokes: list[Stroke] = []
    dots: list[tuple[float, float, float]] = []
    if symbol == "-":
        strokes.append((wobbly(rng, [(0, mid), (w, mid + rng.normal(0, 0.05 * h))], wob), pw))
    elif symbol == "=":
        gap = h * rng.uniform(0.12, 0.18)
        for dy in (-gap, gap):
            strokes.append((wobbly(rng, [(0, mid + dy), (w, mid + dy + rng.normal(0, 0.04 * h))], wob), pw))
    elif symbol == "+":
        strokes.append((wobbly(rng, [(0, mid), (w, mid)], wob), pw))
        strokes.append((wobbly(rng, [(w / 2, mid - 0.3 * h), (w / 2, mid + 0.3 * h)], wob), pw))
    elif symbol in ("*", ".", ","):
        r = pw * rng.uniform(0.7, 1.0)
        cy = mid if symbol == "*" else -r
        dots.append((w / 2, cy, r))
        if symbol == ",":
            strokes.append((np.array([[w / 2 + r * 0.5, cy], [w / 2 - r, cy + 0.25 * h]]), pw * 0.8))
    elif symbol in (")", "("):
        sign = 1.0 if symbol == ")" else -1.0
        cx = w / 2 - sign * 0.4 * w
        pts = _arc(cx, -0.45 * h, 0.9 * w, 0.62 * h, -math.pi / 2.4, math.pi / 2.4, 9)
        pts[:, 0] = cx + sign * (pts[:, 0] - cx)
        strokes.append((pts, pw))
    elif symbol == "/":
        strokes.append((wobbly(rng, [(w, -1.05 * h), (0, 0.1 * h)], wob), pw))
    else:  # "N": a handwritten number sign, an N and a small underlined o
        nw = 0.6 * w
        strokes.append((wobbly(rng, [(0, 0), (0.05 * nw, -h), (nw, 0), (nw, -h)], wob), pw))
        ox = nw + 0.22 * w
        strokes.append((_arc(ox, -0.72 * h, 0.14 * w, 0.16 * h, 0.0, 2 * math.pi, 12), pw * 0.8))
        strokes.append((np.array([[ox - 0.16 * w, -0.38 * h], [ox + 0.16 * w, -0.4 * h]]), pw * 0.8))
    return draw_glyph(strokes, dots, w + h * rng.uniform(0.15, 0.35), rng.normal(0.0, 2.0), pen.slant)


def scribble_glyph(rng: np.random.Generator, letters: int, height: float, pen: Pen, *, capital: bool = False) -> Glyph:
    """A cursive 'word' of `letters` letter-like loops and arches (a stand-in for handwritten text)."""
    if letters < 1:
        raise ValueError(f"letters: expected >= 1, got {letters}")
    h = height
    adv = h * rng.uniform(0.42, 0.55)
    xh = h * rng.uniform(0.5, 0.62)  # x-height
    t = np.linspace(0.0, 1.0, 14, endpoint=False)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for k in range(letters):
        kind = rng.random()
        amp = h * rng.uniform(0.9, 1.05) if kind < 0.25 or (capital and k == 0) else xh * rng.uniform(0.85, 1.1)
        loop = rng.uniform(0.1, 0.3) if rng.random() < 0.7 else rng.uniform(-0.12, 0.02)  # + loops at the top: e, l
        y = -amp * (0.5 - 0.5 * np.cos(2 * np.pi * t))
        if 0.25 <= kind < 0.35:  # a descender
            y = np.where(t > 0.5, y + 0.4 * h * np.sin(np.pi * (t - 0.5) * 2) ** 2, y)
        xs.append(adv * (k + t) + loop * adv * np.sin(2 * np.pi * t))
        ys.append(y)
    x = np.concatenate([*xs, [adv * letters]])
    y = np.concatenate([*ys, [0.0]]) + np.cumsum(rng.normal(0, 0.01 * h, x.size))  # a wandering baseline
    x -= x.min()
    advance = float(x.max()) + h * rng.uniform(0.15, 0.3)
    return draw_glyph([(np.stack([x, y], axis=1), pen.width)], [], advance, rng.normal(0.0, 1.5), pen.slant)


def line_glyph(rng: np.random.Generator, length: float, pen: Pen) -> Glyph:
    """A slightly wavy horizontal pen line `length` px long (an underline or a fraction bar); its anchor
    is the left end and `advance` its length."""
    n = max(2, round(length / 12.0))
    xs = np.linspace(0.0, length, n + 1)
    ys = np.cumsum(rng.normal(0.0, 0.6, n + 1)) + rng.normal(0, 0.02) * xs
    return draw_glyph([(np.stack([xs, ys - ys[0]], axis=1), pen.width)], [], length, 0.0, 0.0)


def loop_glyph(rng: np.random.Generator, width: float, height: float, pen: Pen) -> Glyph:
    """A hand-drawn closed loop enclosing a `width` x `height` px box; its anchor is the loop's centre."""
    start = rng.uniform(0, 2 * math.pi)
    ts = np.linspace(start, start + 2 * math.pi + rng.uniform(0.2, 0.6), 36)
    wobble = 1.0 + np.cumsum(rng.normal(0, 0.012, ts.shape))
    wobble -= np.linspace(0, wobble[-1] - 1.0, ts.size) * 0.5
    pts = np.stack([width / 2 * wobble * np.cos(ts), height / 2 * wobble * np.sin(ts)], axis=1)
    return draw_glyph([(pts, pen.width)], [], width, rng.normal(0.0, 3.0), 0.0)
