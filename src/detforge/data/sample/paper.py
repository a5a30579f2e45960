"""Notebook paper: off-white tinted sheet with fibres, ruled lines or a 5 mm grid, sometimes a red margin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["Paper", "make_paper"]


@dataclass(frozen=True)
class Paper:
    """A blank sheet: RGB `image`; writing lines every `pitch` px with the first at y = `first_line`;
    `margin_x` is the x of the red margin line, or None when there is none; `style` "ruled" or "grid"."""

    image: Image.Image
    pitch: float
    first_line: float
    margin_x: float | None
    style: str

    def baselines(self) -> np.ndarray:
        """y (px) of every writing line on the sheet, top to bottom."""
        return np.arange(self.first_line, self.image.height, self.pitch, dtype=np.float64)


def _mix(base: np.ndarray, colour: tuple[float, float, float], alpha: float) -> tuple[int, int, int]:
    """The colour of `colour` laid over `base` with opacity `alpha`, as 8-bit RGB."""
    mixed = base * (1.0 - alpha) + np.asarray(colour) * alpha
    r, g, b = (int(v) for v in np.clip(np.round(mixed), 0, 255))
    return r, g, b


def make_paper(rng: np.random.Generator, width: int, height: int) -> Paper:
    """A random notebook sheet of `width` x `height` px (ruled or squared, tinted, with fibres)."""
    style = "grid" if rng.random() < 0.5 else "ruled"
    pitch = float(rng.uniform(27.0, 35.0)) * (min(width, height) / 540.0) ** 0.5
    tint = np.array([246.0, 243.0, 233.0]) + rng.uniform(-8, 6, 3)
    tint[2] -= float(rng.uniform(0, 10))  # a little yellowish, sometimes
    cells = (max(2, width // 40 + 2), max(2, height // 40 + 2))
    blotches = tint + rng.standard_normal((cells[1], cells[0], 1)) * float(rng.uniform(1.0, 3.0))
    small = Image.fromarray(np.clip(np.round(blotches), 0, 255).astype(np.uint8), mode="RGB")
    image = small.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)

    fibre = _mix(tint, (150.0, 140.0, 125.0), float(rng.uniform(0.05, 0.12)))
    for _ in range(int(rng.integers(60, 200))):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(4, 22)
        bend = rng.normal(0, 3)
        dx, dy = np.cos(ang) * length / 2, np.sin(ang) * length / 2
        draw.line([(x - dx, y - dy), (x + bend * dy / length, y - bend * dx / length), (x + dx, y + dy)], fill=fibre)

    phase = float(rng.uniform(0, pitch))
    if style == "ruled":
        blue = (float(rng.uniform(110, 160)), float(rng.uniform(150, 185)), float(rng.uniform(200, 230)))
        colour = _mix(tint, blue, float(rng.uniform(0.35, 0.65)))
        for y in np.arange(phase, height, pitch):
            draw.line([(0, round(y)), (width, round(y))], fill=colour)
    else:
        blue = (float(rng.uniform(120, 160)), float(rng.uniform(145, 175)), float(rng.uniform(185, 215)))
        colour = _mix(tint, blue, float(rng.uniform(0.25, 0.5)))
        cell = pitch / 2.0
        for y in np.arange(phase, height, cell):
            draw.line([(0, round(y)), (width, round(y))], fill=colour)
        for x in np.arange(float(rng.uniform(0, cell)), width, cell):
            draw.line([(round(x), 0), (round(x), height)], fill=colour)

    margin_x: float | None = None
    if rng.random() < 0.6:
        margin_x = float(rng.uniform(0.09, 0.15)) * width
        red = (float(rng.uniform(200, 230)), float(rng.uniform(70, 110)), float(rng.uniform(90, 120)))
        strength = float(rng.uniform(0.45, 0.8))
        draw.line([(round(margin_x), 0), (round(margin_x), height)], fill=_mix(tint, red, strength))
        if rng.random() < 0.5:
            draw.line([(round(margin_x) + 1, 0), (round(margin_x) + 1, height)], fill=_mix(tint, red, strength * 0.6))
    return Paper(image, pitch, phase, margin_x, style)
