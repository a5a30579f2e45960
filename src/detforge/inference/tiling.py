"""Tiled prediction for large images: overlapping crops predicted in batches, merged back into one frame.

Small objects in a large image shrink below what a detector sees once the image is resized to its
input size; predicting on crops at full resolution finds them. Boxes found in a tile are shifted back
to the image frame and merged, with the full-image prediction when asked, by class-aware NMS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from detforge.inference.tta import merge_detections
from detforge.structures.detections import Detections

__all__ = ["PredictFn", "TileConfig", "needs_tiling", "predict_tiled", "shift_detections", "tile_windows"]

PredictFn = Callable[[list[Tensor]], list[Detections]]
"""Predicts on float32 [3, H, W] images in [0, 1]; one Detections per image, in that image's frame."""

Window = tuple[int, int, int, int]
"""A tile as (x0, y0, x1, y1) integer pixels of the image, half-open."""


@dataclass(frozen=True)
class TileConfig:
    """How to tile: square tiles of `size` pixels overlapping by the fraction `overlap` of `size`.

    `include_full_image`: also predict on the whole image (finds objects larger than a tile).
    `iou_threshold`: IoU above which same-class boxes from different tiles are merged by NMS.
    Images no larger than `size` on both sides are predicted whole, without tiles.
    """

    size: int = 640
    overlap: float = 0.2
    include_full_image: bool = True
    iou_threshold: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 32:
            raise ValueError(f"TileConfig.size: expected an int >= 32 pixels, got {self.size!r}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"TileConfig.overlap: expected a fraction in [0, 1), got {self.overlap}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"TileConfig.iou_threshold: expected a value in (0, 1], got {self.iou_threshold}")


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Tile starts covering [0, length): every `stride`, the last one flush with the end."""
    if length <= size:
        return [0]
    count = math.ceil((length - size) / stride) + 1
    starts = [min(i * stride, length - size) for i in range(count)]
    return sorted(set(starts))


def tile_windows(width: int, height: int, config: TileConfig) -> list[Window]:
    """The tiles covering a `width` x `height` image, row by row; each is `config.size` square, or the
    whole side when the image is smaller; neighbours overlap by at least `overlap * size` pixels."""
    if width < 1 or height < 1:
        raise ValueError(f"tile_windows: image size must be positive, got {width}x{height}")
    stride = max(1, int(config.size * (1.0 - config.overlap)))
    xs, ys = _starts(width, config.size, stride), _starts(height, config.size, stride)
    return [(x, y, min(x + config.size, width), min(y + config.size, height)) for y in ys for x in xs]


def needs_tiling(width: int, height: int, config: TileConfig) -> bool:
    """True when an image of this size is larger than one tile on either side."""
    return width > config.size or height > config.size


def shift_detections(detections: Detections, window: Window, image_size: tuple[int, int]) -> Detections:
    """Detections of the crop `window` moved into the frame of the whole image (`image_size` = (H, W)).

    Boxes are offset by the window origin; masks are pasted into full-size [N, H, W] masks.
    """
    x0, y0, x1, y1 = window
    offset = torch.tensor([x0, y0, x0, y0], dtype=detections.boxes.dtype, device=detections.boxes.device)
    masks = None
    if detections.masks is not None:
        masks = torch.zeros((len(detections), *image_size), dtype=torch.bool, device=detections.masks.device)
        masks[:, y0:y1, x0:x1] = detections.masks.bool()
    return Detections(detections.boxes + offset, detections.labels, detections.scores, image_size, masks)


def predict_tiled(predict: PredictFn, image: Tensor, config: TileConfig, *, batch_size: int = 4) -> Detections:
    """Detections of one float [3, H, W] image from its tiles (and the whole image when configured).

    Tiles are predicted `batch_size` at a time; boxes are returned in the image's frame, merged across
    tiles by class-aware NMS at `config.iou_threshold`, sorted by score.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"predict_tiled: expected an image [3, H, W], got {list(image.shape)}")
    if batch_size < 1:
        raise ValueError(f"predict_tiled: batch_size must be >= 1, got {batch_size}")
    height, width = int(image.shape[1]), int(image.shape[2])
    size = (height, width)
    if not needs_tiling(width, height, config):
        return predict([image])[0]
    windows = tile_windows(width, height, config)
    parts: list[Detections] = []
    for start in range(0, len(windows), batch_size):
        chunk: Sequence[Window] = windows[start : start + batch_size]
        crops = [image[:, y0:y1, x0:x1] for x0, y0, x1, y1 in chunk]
        for window, dets in zip(chunk, predict(crops), strict=True):
            parts.append(shift_detections(dets, window, size))
    if config.include_full_image:
        parts.append(predict([image])[0])
    return merge_detections(parts, size, iou_threshold=config.iou_threshold)
