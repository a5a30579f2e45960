"""Smooth random fields, made at low resolution and enlarged (cheap, vectorised)."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["smooth_noise", "upscale"]


def upscale(field: np.ndarray, width: int, height: int) -> np.ndarray:
    """Enlarge a small float field to float32 [height, width] with bicubic interpolation."""
    img = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def smooth_noise(rng: np.random.Generator, width: int, height: int, cell: float) -> np.ndarray:
    """float32 [height, width] noise, about zero mean and unit spread, varying over ~`cell` pixels."""
    gw = max(2, round(width / cell) + 2)
    gh = max(2, round(height / cell) + 2)
    return upscale(rng.standard_normal((gh, gw), dtype=np.float32), width, height)
