"""A notebook page of 1-3 handwritten physics solutions, each headed by its task number.

Everything a page draws goes into one ink-coverage layer; the task numbers' tight ink boxes are
recorded as they are written, and every handwritten digit drawn is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from detforge.data.sample.handwriting import DigitBank, digit_glyph
from detforge.data.sample.paper import make_paper
from detforge.data.sample.pen import Glyph, Pen
from detforge.data.sample.symbols import LETTERS, letter_glyph, line_glyph, loop_glyph, scribble_glyph, symbol_glyph

__all__ = ["Page", "render_page"]

XYXY = tuple[float, float, float, float]
_INK_THRESHOLD = 0.3  # coverage above which a pixel belongs to a glyph's tight box
_BOX_PAD = 2.0  # px added around the task number's ink
SAFE_MARGIN = 0.09
"""Task numbers stay at least this fraction of the page size away from every page edge."""

_INKS = (  # (base colour, jitter) of blue, black and dark violet pens
    ((28.0, 45.0, 140.0), 18.0),
    ((32.0, 32.0, 38.0), 10.0),
    ((62.0, 32.0, 105.0), 12.0),
)


@dataclass(frozen=True)
class Page:
    """A written page: RGB `image`; `task_boxes` the XYXY pixel boxes of the task
    numbers (ink of the digits and their dot/bracket, plus a small margin) with `task_numbers` their
    text; `digits_drawn` counts every handwritten digit on the page, `digits_boxed` those inside boxes."""

    image: Image.Image
    task_boxes: tuple[XYXY, ...]
    task_numbers: tuple[str, ...]
    digits_drawn: int
    digits_boxed: int


class _Ink:
    """The page's ink coverage, float32 [H, W] in [0, 1]."""

    def __init__(self, height: int, width: int) -> None:
        self.alpha = np.zeros((height, width), dtype=np.float32)

    def put(self, g: Glyph, x: float, y: float, pressure: float = 1.0) -> XYXY | None:
        """Draw `g` (its ink scaled by `pressure`) with its anchor at (x, y); return the tight box of its
        visible ink, None if none of it is on the page."""
        h, w = self.alpha.shape
        top, left = round(y - g.anchor_y), round(x - g.anchor_x)
        gh, gw = g.alpha.shape
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + gh, h), min(left + gw, w)
        if y0 >= y1 or x0 >= x1:
            return None
        patch = g.alpha[y0 - top : y1 - top, x0 - left : x1 - left]
        region = self.alpha[y0:y1, x0:x1]
        np.maximum(region, patch * pressure if pressure != 1.0 else patch, out=region)
        mask = patch > _INK_THRESHOLD
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        return (float(x0 + cols[0]), float(y0 + rows[0]), float(x0 + cols[-1] + 1), float(y0 + rows[-1] + 1))


class _Writer:
    """One writer with one pen on one page; counts the digits it writes."""

    def __init__(self, rng: np.random.Generator, bank: DigitBank, ink: _Ink, pen: Pen, height: float) -> None:
        self.rng, self.bank, self.ink, self.pen, self.h = rng, bank, ink, pen, height
        self.digits = 0


class _Line:
    """A pen moving right along one writing line from `x` at baseline `y`, stopping before `right`."""

    def __init__(self, w: _Writer, x: float, y: float, right: float) -> None:
        self.w, self.x, self.y, self.right = w, x, y, right
        self.full = False

    def put(self, g: Glyph, dy: float = 0.0) -> XYXY | None:
        if self.full or self.x - g.anchor_x + g.alpha.shape[1] > self.right:
            self.full = True
            return None
        rng = self.w.rng
        box = self.w.ink.put(g, self.x, self.y + dy + rng.normal(0.0, 0.035 * self.w.h), float(rng.uniform(0.82, 1.0)))
        self.x += g.advance
        return box

    def space(self, factor: float) -> None:
        self.x += factor * self.w.h

    def digits(self, text: str, scale: float = 1.0, dy: float = 0.0) -> list[XYXY]:
        boxes = []
        for ch in text:
            if ch.isdigit():
                box = self.put(digit_glyph(self.w.rng, self.w.bank, int(ch), self.w.h * scale, self.w.pen), dy)
                self.w.digits += box is not None
            else:
                box = self.put(symbol_glyph(self.w.rng, ch, self.w.h * scale, self.w.pen), dy)
            if box is not None:
                boxes.append(box)
            self.x -= 0.12 * self.w.h * scale  # digits of one number sit close together
        self.x += 0.12 * self.w.h * scale
        return boxes

    def sym(self, s: str) -> None:
        self.put(symbol_glyph(self.w.rng, s, self.w.h, self.w.pen))

    def var(self) -> None:
        self.put(letter_glyph(self.w.rng, str(self.w.rng.choice(LETTERS)), self.w.h, self.w.pen))

    def word(self, letters: int, *, capital: bool = False) -> None:
        self.put(scribble_glyph(self.w.rng, letters, self.w.h, self.w.pen, capital=capital))

    def number(self) -> str:
        rng = self.w.rng
        text = str(int(rng.choice([rng.integers(1, 10), rng.integers(10, 100), rng.integers(100, 10000)])))
        if rng.random() < 0.25 and len(text) > 1:
            cut = int(rng.integers(1, len(text)))
            text = text[:cut] + str(rng.choice([",", "."])) + text[cut:]
        return text

    def fraction(self) -> None:
        """A stacked fraction (numerator, bar, denominator) centred on the line's middle."""
        w, rng = self.w, self.w.rng
        if self.full:
            return
        saved = self.x, self.w.digits
        bar_y = -0.45 * w.h
        num = _Line(w, self.x + 0.15 * w.h, self.y + bar_y - 0.2 * w.h, self.right)
        if rng.random() < 0.5:
            num.digits(self.number(), scale=0.72)
        else:
            num.put(scribble_glyph(rng, int(rng.integers(1, 3)), 0.72 * w.h, w.pen))
        den = _Line(w, self.x + 0.15 * w.h, self.y + bar_y + 0.95 * w.h * 0.72 + 0.1 * w.h, self.right)
        den.digits(str(int(rng.integers(2, 100))), scale=0.72)
        length = max(num.x, den.x) - self.x
        if num.full or den.full or self.x + length + w.h > self.right:
            self.x, self.w.digits = saved
            self.full = True
            return
        bar = _Line(w, self.x, self.y + bar_y, self.right)
        bar.put(line_glyph(rng, length, w.pen))
        self.x += length + 0.25 * w.h


def _formula(line: _Line, *, tall: bool) -> None:
    """`var [_i] = term (op term)* [= number unit]`; `tall` allows fractions and powers."""
    rng = line.w.rng
    line.var()
    if rng.random() < 0.3:
        line.digits(str(int(rng.integers(0, 10))), scale=0.55, dy=0.25 * line.w.h)
    line.space(0.2)
    line.sym("=")
    for i in range(int(rng.integers(1, 4))):
        if i:
            line.sym(str(rng.choice(["+", "-", "*"])))
        kind = rng.random()
        if kind < 0.45:
            line.digits(line.number())
        elif kind < 0.7 or not tall:
            line.var()
            if rng.random() < 0.3:
                line.sym("*")
                line.var()
        elif kind < 0.88:
            line.fraction()
        else:
            line.digits(line.number())
            line.digits(str(int(rng.integers(2, 10))), scale=0.55, dy=-0.6 * line.w.h)
    if rng.random() < 0.5:
        line.space(0.2)
        line.sym("=")
        line.digits(line.number())
        if rng.random() < 0.7:
            line.space(0.3)
            line.word(int(rng.integers(1, 4)))  # a unit


def _text(line: _Line) -> None:
    """A sentence of scribbled words, now and then a number among them."""
    rng = line.w.rng
    for i in range(int(rng.integers(2, 9))):
        if i and rng.random() < 0.12:  # never first: a bare number at the margin would pass for a task number
            line.digits(line.number())
        else:
            line.word(int(rng.integers(2, 8)), capital=i == 0 and rng.random() < 0.5)
        line.space(float(rng.uniform(0.45, 0.9)))


def _body_line(w: _Writer, x: float, y: float, right: float, *, tall: bool) -> None:
    line = _Line(w, x, y, right)
    r = w.rng.random()
    if r < 0.62:
        _formula(line, tall=tall)
    elif r < 0.88:
        _text(line)
    else:
        line.word(3, capital=True)
        line.space(0.6)
        _formula(line, tall=False)


def _header(w: _Writer, x: float, y: float, right: float) -> tuple[XYXY, str]:
    """Write a task number (with prefix, dot/bracket and decoration) and perhaps more; return its box."""
    rng = w.rng
    line = _Line(w, x, y, right)
    r = rng.random()
    if r < 0.2:
        line.sym("N")
        line.space(float(rng.uniform(0.0, 0.3)))
    elif r < 0.35:
        line.word(int(rng.integers(3, 6)), capital=True)
        line.space(float(rng.uniform(0.3, 0.6)))
    number = str(int(rng.integers(1, 10) if rng.random() < 0.6 else rng.integers(10, 41)))
    suffix = str(rng.choice([".", ")", ""], p=[0.55, 0.45, 0.0] if r >= 0.35 else [0.2, 0.0, 0.8]))
    start = w.digits
    boxes = line.digits(number + suffix, scale=float(rng.uniform(1.0, 1.15)))
    if w.digits - start != len(number):
        raise RuntimeError(f"task number {number!r} did not fit on its line (x={x:.0f}, right={right:.0f})")
    x0, y0 = min(b[0] for b in boxes) - _BOX_PAD, min(b[1] for b in boxes) - _BOX_PAD
    x1, y1 = max(b[2] for b in boxes) + _BOX_PAD, max(b[3] for b in boxes) + _BOX_PAD
    deco = rng.random()
    if deco < 0.15:
        loop = loop_glyph(rng, x1 - x0 + 0.5 * w.h, y1 - y0 + 0.4 * w.h, w.pen)
        w.ink.put(loop, (x0 + x1) / 2, (y0 + y1) / 2)
        line.space(0.3)
    elif deco < 0.3:
        w.ink.put(line_glyph(rng, x1 - x0 + 0.2 * w.h, w.pen), x0 - 0.1 * w.h, y1 + 0.15 * w.h)
    if rng.random() < 0.6:
        line.space(float(rng.uniform(1.0, 2.5)))
        if rng.random() < 0.5:
            _text(line)
        else:
            _formula(line, tall=False)
    return (x0, y0, x1, y1), number


def render_page(rng: np.random.Generator, bank: DigitBank, width: int, height: int) -> Page:
    """A `width` x `height` px page with 1-3 solutions; task numbers lie inside the SAFE_MARGIN zone."""
    paper = make_paper(rng, width, height)
    pen = Pen(width=float(rng.uniform(1.3, 2.4)), slant=float(rng.uniform(-0.08, 0.3)))
    h = paper.pitch * float(rng.uniform(0.55, 0.7))
    ink = _Ink(height, width)
    w = _Writer(rng, bank, ink, pen, h)
    left = (paper.margin_x if paper.margin_x is not None else SAFE_MARGIN * width) + float(rng.uniform(0.3, 0.8)) * h
    right = width * float(1.0 - rng.uniform(0.02, 0.08))
    baselines = [float(b) for b in paper.baselines() if 1.4 * h <= b <= height - 0.3 * paper.pitch]
    header_ok = [SAFE_MARGIN * height + 1.4 * h <= b <= (1 - SAFE_MARGIN) * height - 0.5 * h for b in baselines]
    i = int(rng.integers(0, 3))
    if rng.random() < 0.35:  # the end of the previous page's solution
        for _ in range(int(rng.integers(1, 4))):
            if i < len(baselines) - 2:
                _body_line(w, left + float(rng.uniform(0.3, 2.0)) * h, baselines[i], right, tall=False)
                i += 1
        i += int(rng.random() < 0.6)
    wanted = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    boxes: list[XYXY] = []
    numbers: list[str] = []
    while len(boxes) < wanted:
        while i < len(baselines) and not header_ok[i]:
            i += 1
        if i >= len(baselines):
            break
        box, number = _header(w, left + float(rng.normal(0, 0.15)) * h, baselines[i], right)
        boxes.append(box)
        numbers.append(number)
        i += 1
        left_lines = len(baselines) - i
        solutions_left = wanted - len(boxes)
        share = left_lines // (solutions_left + 1) if solutions_left else left_lines
        if solutions_left:
            body = int(rng.integers(2, max(3, share)))
        else:  # the last solution runs on, mostly to the foot of the page
            body = max(min(2, share), round(share * float(rng.uniform(0.6, 1.0))))
        for k in range(body):
            if i >= len(baselines):
                break
            # no fractions or powers next to a task number (above it or below it)
            tall = k > 0 and not (k == body - 1 and solutions_left > 0)
            _body_line(w, left + float(rng.uniform(0.3, 2.5)) * h, baselines[i], right, tall=tall)
            i += 1
        i += int(rng.random() < 0.5)
    if not boxes:
        raise RuntimeError(f"no room for a task number on a {width}x{height} page (pitch {paper.pitch:.1f} px)")

    ink_colour, jitter = _INKS[int(rng.integers(len(_INKS)))]
    colour = np.clip(np.asarray(ink_colour) + rng.uniform(-jitter, jitter, 3), 0, 255).round().astype(int)
    mask = Image.fromarray((ink.alpha * float(rng.uniform(0.85, 0.97) * 255.0) + 0.5).astype(np.uint8), mode="L")
    pen_colour = Image.new("RGB", (width, height), (int(colour[0]), int(colour[1]), int(colour[2])))
    image = Image.composite(pen_colour, paper.image, mask)
    boxed = sum(len(n) for n in numbers)
    return Page(image, tuple(boxes), tuple(numbers), w.digits, boxed)
