"""Colour-mode normalisation shared by training, prediction and drawing (no torch).

One rule for every image detforge reads: the result is 8-bit RGB; transparency is composited onto
white; 16-bit grayscale is scaled by 255/65535.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from detforge.errors import InvalidImage

__all__ = ["to_rgb"]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert("RGB")


def to_rgb(image: Image.Image, name: str = "<image>") -> Image.Image:
    """A new 8-bit RGB image of `image` (same size, no orientation change).

    Transparency (RGBA, LA, PA, palette with a transparent colour) is composited onto white; 16-bit
    grayscale (I;16*) is scaled by 255/65535; 32-bit integer ("I") likewise when any value exceeds
    255, else taken as 8-bit; float ("F") is scaled by 255 when its values lie in [0, 1], else clipped
    to [0, 255]; CMYK, palette, 1-bit, L and YCbCr are converted by Pillow. InvalidImage for modes
    Pillow cannot convert.
    """
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        return _composite_on_white(image)
    if mode in _SIXTEEN_BIT_MODES:
        return _gray_to_rgb(np.asarray(image).astype(np.float64) / 257.0)
    if mode == "I":
        values = np.asarray(image).astype(np.float64)
        sixteen_bit = values.size > 0 and float(values.max()) > 255.0
        return _gray_to_rgb(values / 257.0 if sixteen_bit else values)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image).astype(np.float64))
        unit = values.size > 0 and float(values.min()) >= 0.0 and float(values.max()) <= 1.0
        return _gray_to_rgb(values * 255.0 if unit else values)
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise InvalidImage(f"{name}: cannot convert colour mode {mode!r} to RGB ({exc})") from None
