"""The one-method interface every recogniser implements, and what it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Reader", "TextRead"]


@dataclass(frozen=True)
class TextRead:
    """One box's reading: `text` the value chosen (may be "" when nothing legible was found) and `score`
    the recogniser's confidence in it, in [0, 1]."""

    text: str
    score: float

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError(f"TextRead.text: expected a str, got {type(self.text).__name__}")
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"TextRead.score: expected a number in [0, 1], got {self.score!r}")


@runtime_checkable
class Reader(Protocol):
    """Reads the text inside boxes of one image.

    `read(image, boxes)`: `image` is a uint8 RGB array [H, W, 3] (the image as displayed); `boxes` a float
    array [N, 4] of XYXY pixel boxes in that image. Returns N `TextRead`s in box order. A box that is empty
    or lies outside the image gives TextRead("", 0.0), never an exception.
    """

    def read(self, image: np.ndarray, boxes: np.ndarray) -> Sequence[TextRead]: ...
