"""The decoding step of the Ray pipeline: a shard's image files read and decoded to pixels in a CPU task.
Imports no torch (a decoding worker starts fast), and decodes under the same policy as every detforge
reader (`detforge.data.images.load_image`: EXIF orientation applied, oversized images refused)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from detforge.data.images import load_image

__all__ = ["decode_shard"]


def decode_shard(row: dict[str, Any]) -> dict[str, Any]:
    """A shard row {shard, names, paths} -> {shard, images}: `images` a pickled list with, per image in
    order, (name, path, uint8 [H, W, 3] array of the image as displayed, or the error message)."""
    decoded: list[tuple[str, str, np.ndarray | str]] = []
    for name, path in zip(row["names"], row["paths"], strict=True):
        try:
            pixels: np.ndarray | str = np.asarray(load_image(path), dtype=np.uint8)
        except Exception as exc:  # one unreadable image never stops a job
            pixels = str(exc) if str(exc).startswith(str(path)) else f"{path}: {type(exc).__name__}: {exc}"
        decoded.append((str(name), str(path), pixels))
    return {"shard": int(row["shard"]), "images": pickle.dumps(decoded, protocol=5)}
