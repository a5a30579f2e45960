"""Images in, model input out: resize (shorter side to min_size, longer side at most max_size, aspect kept),
ImageNet normalisation, and zero padding (after normalisation: the mean colour) at the bottom and right to
multiples of 32. Boxes map between an image and its resized frame by per-axis factors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SIZE_MULTIPLE", "Batch", "make_batch", "normalise", "resized_size"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE_MULTIPLE = 32  # the coarsest stride: every level then has a whole number of points


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(height, width) after scaling by min(min_size / shorter side, max_size / longer side), floored (as
    torchvision's detection transform does, so both families see the same pixels)."""
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def normalise(images: Tensor) -> Tensor:
    """[..., 3, H, W] in [0, 1] -> ImageNet-normalised, same shape."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)[:, None, None]
    return (images - mean) / std


@dataclass(frozen=True)
class Batch:
    """tensor: [B, 3, H, W] normalised, H and W multiples of 32; sizes: (height, width) of each resized image
    inside it (top-left aligned); factors: per image (y, x) ratio resized / original size."""

    tensor: Tensor
    sizes: tuple[tuple[int, int], ...]
    factors: tuple[tuple[float, float], ...]


def make_batch(images: Sequence[Tensor], min_size: int, max_size: int) -> Batch:
    """Resize (bilinear), normalise and pad images ([3, H_i, W_i] floats in [0, 1]) into one Batch."""
    resized, sizes, factors = [], [], []
    for image in images:
        height, width = int(image.shape[-2]), int(image.shape[-1])
        size = resized_size(height, width, min_size, max_size)
        if size != (height, width):
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
        resized.append(normalise(image))
        sizes.append(size)
        factors.append((size[0] / height, size[1] / width))
    pad_h = SIZE_MULTIPLE * math.ceil(max(s[0] for s in sizes) / SIZE_MULTIPLE)
    pad_w = SIZE_MULTIPLE * math.ceil(max(s[1] for s in sizes) / SIZE_MULTIPLE)
    tensor = resized[0].new_zeros((len(resized), 3, pad_h, pad_w))
    for i, image in enumerate(resized):
        tensor[i, :, : image.shape[1], : image.shape[2]] = image
    return Batch(tensor, tuple(sizes), tuple(factors))
