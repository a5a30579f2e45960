"""Turn a flat page into a phone photo: perspective, desk background, uneven light, blur, noise, JPEG.

Boxes follow the geometry: each box's four corners go through the same homography as the pixels,
and the axis-aligned box around them, clipped to the image, is the photo's box.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from detforge.data.sample._noise import smooth_noise

__all__ = ["Photo", "encode_jpeg", "homography", "photograph", "transform_box"]

XYXY = tuple[float, float, float, float]
MAX_OVERSHOOT = 0.05
"""In a close-up the page corners lie at most this fraction of the image size outside the image."""

_DESKS = ((120.0, 85.0, 55.0), (165.0, 125.0, 85.0), (90.0, 90.0, 95.0), (185.0, 185.0, 180.0), (45.0, 60.0, 85.0))


@dataclass(frozen=True)
class Photo:
    """RGB `image` and the `boxes` (XYXY pixels, inside the image) of the page's boxes in it."""

    image: Image.Image
    boxes: tuple[XYXY, ...]


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 matrix (float64, [2, 2] = 1) mapping the four points `src` [4, 2] onto `dst` [4, 2]."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    h = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def transform_box(matrix: np.ndarray, box: XYXY, width: int, height: int) -> XYXY:
    """Map an XYXY box's corners through `matrix`; return their bounding box clipped to the image."""
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64) @ matrix.T
    xy = pts[:, :2] / pts[:, 2:]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return (
        float(np.clip(lo[0], 0, width)),
        float(np.clip(lo[1], 0, height)),
        float(np.clip(hi[0], 0, width)),
        float(np.clip(hi[1], 0, height)),
    )


def _field_image(field: np.ndarray, width: int, height: int) -> Image.Image:
    """A small float RGB field [h, w, 3] (0..255) enlarged to a `width` x `height` RGB image."""
    small = Image.fromarray(np.clip(np.round(field), 0, 255).astype(np.uint8), mode="RGB")
    return small.resize((width, height), Image.Resampling.BILINEAR)


def _desk(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A table top: a colour, soft blotches and, for wood, grain streaks."""
    gw, gh = max(2, width // 4), max(2, height // 4)
    base = np.asarray(_DESKS[int(rng.integers(len(_DESKS)))]) + rng.uniform(-15, 15, 3)
    shade = 1.0 + 0.06 * smooth_noise(rng, gw, gh, 20.0)
    if rng.random() < 0.5:  # wood grain along a random direction
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
        across = (np.cos(ang) * yy - np.sin(ang) * xx) * 4.0
        wave = rng.standard_normal((gh, gw), dtype=np.float32).cumsum(axis=1) * 0.05
        shade += np.sin(across * rng.uniform(0.15, 0.4) + wave * 3.0) * 0.04
    return _field_image(base * shade[..., None], width, height)


def _lighting(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """RGB image of per-pixel light factors (255 = 1): a gradient, a vignette, maybe a soft shadow, a
    white balance."""
    gw, gh = 40, 30
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    u, v = xx / (gw - 1) - 0.5, yy / (gh - 1) - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.05, 0.25) * (np.cos(ang) * u + np.sin(ang) * v)
    light *= 1.0 - rng.uniform(0.05, 0.35) * (u * u + v * v) * 2.0
    if rng.random() < 0.5:  # the shadow of a hand or phone: a blurred half-plane
        ang = rng.uniform(0, 2 * np.pi)
        dist = np.cos(ang) * u + np.sin(ang) * v - rng.uniform(0.15, 0.45)
        light *= 1.0 - rng.uniform(0.15, 0.4) / (1.0 + np.exp(-dist / rng.uniform(0.02, 0.08)))
    light *= rng.uniform(0.9, 1.0) / light.max()
    balance = rng.uniform(0.93, 1.0, 3)
    return _field_image(light[..., None] * balance * 255.0, width, height)


def _noise_table(sigma: float) -> list[int]:
    """`Image.point` table (RGB) turning uniform bytes into Gaussian noise of `sigma` around 128."""
    normal = NormalDist(128.0, sigma)
    one = [min(255, max(0, round(normal.inv_cdf((i + 0.5) / 256.0)))) for i in range(256)]
    return one * 3


def photograph(rng: np.random.Generator, page: Image.Image, boxes: Sequence[XYXY], width: int, height: int) -> Photo:
    """Photograph the RGB `page` into a `width` x `height` RGB image; `boxes` are XYXY page pixels.
    Boxes inside the page's central (1 - 2 * 0.09) region stay wholly inside the image."""
    pw, ph = page.size
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float64)
    canvas = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    outward = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    size = np.array([width, height], dtype=np.float64)
    close_up = rng.random() < 0.6
    if close_up:
        dst = canvas + outward * rng.uniform(0.0, MAX_OVERSHOOT, (4, 2)) * size
    else:
        dst = canvas - outward * rng.uniform(0.03, 0.12, (4, 2)) * size
    fwd = homography(src, dst)
    inv = homography(dst, src)
    coeffs = tuple(float(c) for c in (inv / inv[2, 2]).ravel()[:8])
    perspective, bilinear = Image.Transform.PERSPECTIVE, Image.Resampling.BILINEAR
    if close_up:
        img = page.transform((width, height), perspective, coeffs, bilinear)
    else:
        warped = page.convert("RGBA").transform((width, height), perspective, coeffs, bilinear, fillcolor=(0, 0, 0, 0))
        mask = warped.getchannel("A")
        dx, dy = int(rng.integers(-6, 7)), int(rng.integers(2, 9))
        shadow = mask.filter(ImageFilter.BoxBlur(int(rng.integers(4, 12)))).transform(
            (width, height), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy)
        )
        depth = float(rng.uniform(0.3, 0.5))
        shade = shadow.point([round(255 - depth * i) for i in range(256)])
        desk = ImageChops.multiply(_desk(rng, width, height), Image.merge("RGB", (shade, shade, shade)))
        img = Image.composite(warped.convert("RGB"), desk, mask)
    img = ImageChops.multiply(img, _lighting(rng, width, height))
    img = img.filter(ImageFilter.BoxBlur(float(rng.uniform(0.25, 0.8))))
    noise = Image.frombytes("RGB", (width, height), rng.bytes(width * height * 3)).point(
        _noise_table(float(rng.uniform(1.5, 5.0)))
    )
    img = ImageChops.add(img, noise, 1.0, -128)
    return Photo(img, tuple(transform_box(fwd, b, width, height) for b in boxes))


def encode_jpeg(rng: np.random.Generator, image: Image.Image) -> bytes:
    """The image as baseline JPEG bytes at a random quality in 80..92."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=int(rng.integers(80, 93)))
    return buf.getvalue()
