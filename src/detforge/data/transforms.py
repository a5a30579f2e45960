"""Training and evaluation augmentation on torchvision.transforms.v2, keeping boxes and masks with the image.

Presets (each one adds to the one before; every preset starts by capping the image size and ends with
`SanitizeBoundingBoxes`):

- ``"none"`` — only the size cap. Also what every preset becomes with ``train=False`` (evaluation).
- ``"light"`` — + horizontal flip (p=0.5).
- ``"standard"`` (the default) — + modest scale jitter (`RandomZoomOut`, canvas up to 1.5x, p=0.5:
  objects appear up to 1.5x smaller) + modest photometric jitter (`ColorJitter` brightness, contrast and
  saturation 0.2; no hue: on a 640x480 image hue jitter alone took 20 ms against 3 ms for the rest).
- ``"strong"`` — zoom-out up to 2x, then SSD-style `RandomIoUCrop` (boxes whose centre falls outside the
  crop are removed, the others clipped to it; a crop may leave an image with no objects), stronger
  photometric jitter (0.4/0.4/0.4, hue 0.05: the hue step is the pipeline's most expensive) and 10%
  grayscale. Cropping is kept out of "standard" because it drops objects.

A zoom-out enlarges the canvas, so the size cap is applied again after it: every output respects `max_size`.

Decision on flips: a horizontal flip mirrors text and digits (a mirrored "2" is not a "2") and swaps
left/right classes, which is wrong for document photos; for natural images it is the single most useful
augmentation. Rather than hide that choice in a preset name, flipping is one explicit switch,
``flip`` (default True, for natural images), that applies to "light", "standard" and "strong" alike; pass
``flip=False`` for documents, text, digits or left/right-sensitive classes. The presets stay nested
(none ⊂ light ⊂ standard ⊂ strong); with ``flip=False`` "light" is the same as "none".

Why the scale jitter is relative (zoom-out/crop) rather than absolute (`RandomShortestSize`): detection
models resize their input to a fixed size themselves, which undoes any absolute resize done here; only
changing the object-to-image ratio survives that.

All randomness comes from torch's global RNG, so a transform is deterministic given `torch`'s RNG state
(the loader seeds it per item, see `detforge.data.loader`).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

__all__ = ["DetectionTransform", "LongestSideCap", "Preset", "build_transforms", "to_float_image"]

Preset = Literal["none", "light", "standard", "strong"]

_FILL: dict[Any, Any] = {tv_tensors.Image: (124, 116, 104), tv_tensors.Mask: 0, "others": 0}
"""Fill for pixels a geometric transform invents: ImageNet's mean colour for images, background for masks."""


class LongestSideCap(v2.Transform):
    """Downscale so that the longest side is at most `max_size` pixels, keeping the aspect ratio.

    Never upscales. Images use antialiased bilinear interpolation, masks nearest; boxes are scaled
    with the image. `max_size=None` is a no-op.
    """

    def __init__(self, max_size: int | None) -> None:
        super().__init__()
        if max_size is not None and max_size < 1:
            raise ValueError(f"LongestSideCap: max_size must be a positive number of pixels or None, got {max_size}")
        self.max_size = max_size

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        if self.max_size is None or max(height, width) <= self.max_size:
            return {"size": None}
        scale = self.max_size / max(height, width)
        new_h = max(1, min(self.max_size, round(height * scale)))
        new_w = max(1, min(self.max_size, round(width * scale)))
        return {"size": [new_h, new_w]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if params["size"] is None:
            return inpt
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


class DetectionTransform:
    """A callable ``(image, boxes, labels, masks) -> (image, boxes, labels, masks)`` around one `v2.Compose`.

    Inputs: image `tv_tensors.Image` uint8 [3, H, W]; boxes `tv_tensors.BoundingBoxes` [N, 4] XYXY pixels
    with ``canvas_size == (H, W)``; labels int64 [N]; masks `tv_tensors.Mask` [N, H, W] or None.
    Outputs have the same types, in the transformed image's frame; boxes removed as degenerate
    (narrower or shorter than 1 pixel) are removed together with their labels and masks.
    `max_size` is the longest-side cap the pipeline starts with (None: no cap); a caller may apply
    `LongestSideCap(max_size)` itself beforehand (e.g. to rasterise masks small), which makes the
    pipeline's own first step a no-op.
    """

    def __init__(self, compose: v2.Compose, max_size: int | None = None) -> None:
        self.compose = compose
        self.max_size = max_size

    def __call__(
        self, image: tv_tensors.Image, boxes: tv_tensors.BoundingBoxes, labels: Tensor, masks: tv_tensors.Mask | None
    ) -> tuple[tv_tensors.Image, tv_tensors.BoundingBoxes, Tensor, tv_tensors.Mask | None]:
        if not isinstance(boxes, tv_tensors.BoundingBoxes) or boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
            raise ValueError(f"DetectionTransform: boxes must be tv_tensors.BoundingBoxes, format XYXY; got {boxes!r}")
        if tuple(boxes.canvas_size) != tuple(image.shape[-2:]):
            raise ValueError(
                f"DetectionTransform: boxes.canvas_size {tuple(boxes.canvas_size)} differs from the image size "
                f"{tuple(image.shape[-2:])} (height, width)"
            )
        if labels.shape != (boxes.shape[0],):
            raise ValueError(f"DetectionTransform: labels must have shape [{boxes.shape[0]}], got {list(labels.shape)}")
        sample: dict[str, Any] = {"image": image, "boxes": boxes, "labels": labels}
        if masks is not None:
            sample["masks"] = masks
        out = self.compose(sample)
        return out["image"], out["boxes"], out["labels"], out.get("masks")

    def __repr__(self) -> str:
        return f"DetectionTransform({self.compose!r})"


def _augmentations(preset: Preset, flip: bool) -> list[v2.Transform]:
    steps: list[v2.Transform] = []
    if preset == "none":
        return steps
    if flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if preset == "light":
        return steps
    if preset == "standard":
        steps.append(v2.RandomZoomOut(fill=_FILL, side_range=(1.0, 1.5), p=0.5))
        steps.append(v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2))
        return steps
    # strong
    steps.append(v2.RandomZoomOut(fill=_FILL, side_range=(1.0, 2.0), p=0.5))
    steps.append(v2.RandomIoUCrop())
    steps.append(v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05))
    steps.append(v2.RandomGrayscale(p=0.1))
    return steps


def build_transforms(
    preset: Preset = "standard", *, train: bool, max_size: int | None, flip: bool = True
) -> DetectionTransform:
    """The augmentation pipeline for `preset` (see the module docstring for what each preset does).

    `max_size`: the longest image side of the output (downscale only; None keeps the size). It is applied
    first, so nothing else works on full-size photos, and again after a zoom-out that enlarged the canvas.
    `train=False` gives the evaluation pipeline (size cap only) whatever the preset.
    `flip`: allow horizontal flips (set False for text, digits, documents and left/right classes).
    """
    if preset not in get_args(Preset):
        raise ValueError(f"build_transforms: unknown preset {preset!r}; expected one of {list(get_args(Preset))}")
    steps: list[v2.Transform] = [LongestSideCap(max_size)]
    if train:
        augmentations = _augmentations(preset, flip)
        steps += augmentations
        if any(isinstance(t, v2.RandomZoomOut) for t in augmentations):
            steps.append(LongestSideCap(max_size))  # zoom-out enlarges the canvas: keep the promise
    steps.append(v2.ClampBoundingBoxes())
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    return DetectionTransform(v2.Compose(steps), max_size)


def to_float_image(image: Tensor) -> Tensor:
    """uint8 [3, H, W] in 0..255 -> plain float32 [3, H, W] in [0, 1]."""
    return image.as_subclass(Tensor).to(torch.float32).div_(255.0)
