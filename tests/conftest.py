"""Shared test fixtures: small images made on the fly, never files outside tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"


def write_image(
    path: Path, width: int, height: int, *, seed: int = 0, exif_orientation: int | None = None, fmt: str | None = None
) -> Path:
    """Write a random-noise RGB image of `width` x `height` (raw, before any EXIF orientation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(path, format=fmt, **kwargs)
    return path


@pytest.fixture
def image_factory() -> Callable[..., Path]:
    """`image_factory(path, width, height, seed=0, exif_orientation=None)` writes an image and returns its path."""
    return write_image


@pytest.fixture
def fixtures_dir(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures (the third-party format samples) inside tmp_path."""
    import shutil

    dst = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dst)
    return dst
