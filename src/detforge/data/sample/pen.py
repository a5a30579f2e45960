"""Pen primitives shared by every handwritten glyph: the Pen and Glyph types and how glyphs are rendered.

A glyph is an ink-coverage mask (float32, 0 = paper, 1 = full ink), the point of the mask that sits
on the writing line at the pen's position (the anchor), and how far the pen moves after it. Glyph
geometry is given in output pixels relative to the anchor, y pointing down (the baseline is y = 0);
it is rotated and sheared (the writer's slant) as geometry, drawn SS times larger and then reduced,
so strokes are anti-aliased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SS", "Glyph", "Pen", "Stroke", "draw_glyph", "raster_glyph", "smooth", "wobbly"]

SS = 2
"""Supersampling factor for drawing and transforming glyphs."""

Stroke = tuple[np.ndarray, float]
"""A pen stroke: polyline points float [N, 2] (x, y output px, anchor-relative) and its width (px)."""


@dataclass(frozen=True)
class Pen:
    """How one writer writes: stroke `width` (output px) and `slant` (shear; positive leans right)."""

    width: float
    slant: float

    def __post_init__(self) -> None:
        if not 0.5 <= self.width <= 6.0:
            raise ValueError(f"width: expected 0.5..6.0 px, got {self.width}")


@dataclass(frozen=True)
class Glyph:
    """Ink mask `alpha` float32 [h, w] in [0, 1]; (`anchor_x`, `anchor_y`) is the point of the mask on the
    writing line at the pen position; `advance` is how far (px) the pen moves right after writing it."""

    alpha: np.ndarray
    anchor_x: float
    anchor_y: float
    advance: float


def _matrix(angle_deg: float, slant: float) -> np.ndarray:
    """2x2 map of glyph geometry: shear by `slant` (tops move right), then rotate by `angle_deg`."""
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, s], [-s, c]]) @ np.array([[1.0, -slant], [0.0, 1.0]])


def _canvas(points: np.ndarray, margin: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Top-left corner (supersampled px) and a size divisible by SS that hold `points` with `margin`."""
    lo = np.floor(points.min(axis=0) - margin)
    hi = np.ceil(points.max(axis=0) + margin)
    size = (hi - lo).astype(int)
    size += (-size) % SS
    return lo, (int(size[0]), int(size[1]))


def _to_alpha(coverage: np.ndarray) -> np.ndarray:
    """Ink coverage [0, 1] -> pen ink: faint fringes dropped, strokes saturated a little."""
    return np.clip((coverage - 0.12) * 1.5, 0.0, 1.0).astype(np.float32)


def draw_glyph(
    strokes: Sequence[Stroke],
    dots: Sequence[tuple[float, float, float]],
    advance: float,
    angle_deg: float,
    slant: float,
) -> Glyph:
    """Render pen `strokes` and filled `dots` (x, y, radius px), rotated by `angle_deg` and sheared by `slant`."""
    m = _matrix(angle_deg, slant) * SS
    moved = [(np.asarray(p, dtype=np.float64) @ m.T, w * SS) for p, w in strokes]
    centres = np.array([[x, y] for x, y, _ in dots], dtype=np.float64).reshape(-1, 2) @ m.T
    widest = max([w for _, w in moved] + [2 * r * SS for _, _, r in dots] + [1.0])
    lo, size = _canvas(np.concatenate([p for p, _ in moved] + [centres, np.zeros((1, 2))]), widest / 2 + 2 * SS)
    img = Image.new("L", size)
    draw = ImageDraw.Draw(img)
    for pts, w in moved:
        _stroke(draw, pts - lo, w)
    for (cx, cy), (_, _, r) in zip(centres - lo, dots, strict=True):
        draw.ellipse((cx - r * SS, cy - r * SS, cx + r * SS, cy + r * SS), fill=255)
    alpha = _to_alpha(np.asarray(img.reduce(SS), dtype=np.float32) * (1.0 / 255.0))
    return Glyph(alpha, float(-lo[0]) / SS, float(-lo[1]) / SS, advance)


def _stroke(draw: ImageDraw.ImageDraw, points: np.ndarray, width: float) -> None:
    """A polyline of `width` px with round ends and joints."""
    pts = [(float(x), float(y)) for x, y in points]
    if len(pts) > 1:
        draw.line(pts, fill=255, width=max(1, round(width)), joint="curve")
    r = width / 2.0
    for x, y in (pts[0], pts[-1]):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _morph(a: np.ndarray, steps: int) -> np.ndarray:
    """3x3 dilation (`steps` > 0) or erosion (< 0), |steps| times; each moves a stroke's width by ~2 px."""
    for _ in range(abs(steps)):
        op = np.maximum if steps > 0 else np.minimum
        p = np.pad(a, 1, mode="edge")
        rows = op(op(p[:, :-2], p[:, 1:-1]), p[:, 2:])
        a = op(op(rows[:-2], rows[1:-1]), rows[2:])
    return a


def raster_glyph(
    pixels: np.ndarray, width: float, height: float, advance: float, angle_deg: float, slant: float, grow: int
) -> Glyph:
    """Render a grey ink raster (uint8 [h, w], 255 = ink) stretched to `width` x `height` px standing on
    the baseline from x = 0, rotated, sheared and with strokes widened (`grow` > 0) or thinned."""
    ch, cw = pixels.shape
    m = _matrix(angle_deg, slant) * SS
    scale = m @ np.diag([width / cw, height / ch])
    shift = m @ np.array([0.0, -height])
    corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float64) @ scale.T + shift
    lo, size = _canvas(np.concatenate([corners, np.zeros((1, 2))]), 2 * SS + abs(grow))
    inv = np.linalg.inv(scale)
    c = -inv @ (shift - lo)  # canvas point p shows raster point inv @ p + c
    data = (inv[0, 0], inv[0, 1], c[0], inv[1, 0], inv[1, 1], c[1])
    img = Image.fromarray(pixels).transform(size, Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
    big = _morph(np.asarray(img, dtype=np.float32) * (1.0 / 255.0), grow)
    small = big.reshape(size[1] // SS, SS, size[0] // SS, SS).mean(axis=(1, 3))
    return Glyph(_to_alpha(small), float(-lo[0]) / SS, float(-lo[1]) / SS, advance)


def wobbly(rng: np.random.Generator, points: np.ndarray | Sequence[tuple[float, float]], amount: float) -> np.ndarray:
    """Subdivide a polyline in thirds and jitter it by ~`amount` px so it looks hand drawn; float [N, 2]."""
    p = np.asarray(points, dtype=np.float64)
    t = np.array([0.0, 1 / 3, 2 / 3])[None, :, None]
    inner = (p[:-1, None, :] + (p[1:] - p[:-1])[:, None, :] * t).reshape(-1, 2)
    out = np.concatenate([inner, p[-1:]])
    return out + rng.normal(0.0, amount, out.shape)


def smooth(points: np.ndarray | Sequence[tuple[float, float]], iterations: int = 2) -> np.ndarray:
    """Round a polyline's corners (Chaikin corner cutting), keeping its end points; float [N, 2]."""
    p = np.asarray(points, dtype=np.float64)
    for _ in range(iterations):
        q = 0.75 * p[:-1] + 0.25 * p[1:]
        r = 0.25 * p[:-1] + 0.75 * p[1:]
        p = np.concatenate([p[:1], np.stack([q, r], axis=1).reshape(-1, 2), p[-1:]])
    return p
