"""Tensor types for models: training targets and predicted detections.

Imported on its own (not from `detforge.structures`) so that the data layer never imports torch.
Labels are contiguous class indices 0..K-1 (see `Categories`); no background class appears here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

__all__ = ["Detections", "Target"]


def _check_boxes(name: str, boxes: Tensor) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}.boxes: expected shape [N, 4] (XYXY pixels), got {list(boxes.shape)}")
    if boxes.dtype != torch.float32:
        raise ValueError(f"{name}.boxes: expected float32, got {boxes.dtype}")


@dataclass(frozen=True)
class Target:
    """Ground truth of one image for training.

    boxes: [N, 4] float32 XYXY absolute pixels of the (transformed) image; labels: [N] int64 in 0..K-1;
    masks: [N, H, W] uint8 or None; image_id: the dataset image id.
    """

    boxes: Tensor
    labels: Tensor
    image_id: int
    masks: Tensor | None = None

    def __post_init__(self) -> None:
        _check_boxes("Target", self.boxes)
        if self.labels.shape != (self.boxes.shape[0],) or self.labels.dtype != torch.int64:
            raise ValueError(
                f"Target.labels: expected int64 shape [{self.boxes.shape[0]}], "
                f"got {self.labels.dtype} {list(self.labels.shape)}"
            )
        if self.masks is not None and (self.masks.ndim != 3 or self.masks.shape[0] != self.boxes.shape[0]):
            raise ValueError(
                f"Target.masks: expected [N, H, W] with N={self.boxes.shape[0]}, got {list(self.masks.shape)}"
            )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Target:
        return Target(
            self.boxes.to(device, non_blocking=non_blocking),
            self.labels.to(device, non_blocking=non_blocking),
            self.image_id,
            None if self.masks is None else self.masks.to(device, non_blocking=non_blocking),
        )


@dataclass(frozen=True)
class Detections:
    """What every predictor returns for one image.

    boxes: [N, 4] float32 XYXY absolute pixels in the original (EXIF-oriented) image frame;
    labels: [N] int64 class indices 0..K-1; scores: [N] float32 in [0, 1], sorted descending;
    image_size: (height, width) of that image; masks: [N, H, W] bool or None.

    Reading (text recognition inside the boxes) adds, per box: `texts[i]` the value read (a str, possibly
    "" when nothing legible was found) or None when box i was not read (its class is not a read class);
    `text_scores[i]` the recogniser's confidence in [0, 1] for that value, NaN where `texts[i]` is None.
    Both are None together when reading did not run. Every method that selects or moves boxes carries them.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor
    image_size: tuple[int, int]
    masks: Tensor | None = None
    texts: tuple[str | None, ...] | None = None
    text_scores: Tensor | None = None

    def __post_init__(self) -> None:
        _check_boxes("Detections", self.boxes)
        n = self.boxes.shape[0]
        if self.labels.shape != (n,) or self.labels.dtype != torch.int64:
            raise ValueError(
                f"Detections.labels: expected int64 shape [{n}], got {self.labels.dtype} {list(self.labels.shape)}"
            )
        if self.scores.shape != (n,) or self.scores.dtype != torch.float32:
            raise ValueError(
                f"Detections.scores: expected float32 shape [{n}], got {self.scores.dtype} {list(self.scores.shape)}"
            )
        if self.masks is not None and (self.masks.ndim != 3 or self.masks.shape[0] != n):
            raise ValueError(f"Detections.masks: expected [N, H, W] with N={n}, got {list(self.masks.shape)}")
        if (self.texts is None) != (self.text_scores is None):
            raise ValueError("Detections.texts / text_scores: expected both or neither")
        if self.texts is not None and self.text_scores is not None:
            if not isinstance(self.texts, tuple) or len(self.texts) != n:
                raise ValueError(f"Detections.texts: expected a tuple of {n} str | None, got {self.texts!r}")
            for i, t in enumerate(self.texts):
                if t is not None and not isinstance(t, str):
                    raise ValueError(f"Detections.texts[{i}]: expected a str or None, got {type(t).__name__}")
            if self.text_scores.shape != (n,) or self.text_scores.dtype != torch.float32:
                raise ValueError(
                    f"Detections.text_scores: expected float32 shape [{n}], "
                    f"got {self.text_scores.dtype} {list(self.text_scores.shape)}"
                )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def has_text(self) -> bool:
        """Whether reading ran on these detections (`texts` and `text_scores` are set)."""
        return self.texts is not None

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> Detections:
        return cls(torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.int64), torch.zeros((0,)), image_size)

    def with_texts(self, texts: Sequence[str | None], text_scores: Sequence[float] | Tensor) -> Detections:
        """The same detections with one text (or None: not read) and one text score (NaN: not read) per box."""
        scores = torch.as_tensor(text_scores, dtype=torch.float32).reshape(-1).cpu()
        return replace(self, texts=tuple(texts), text_scores=scores)

    def without_texts(self) -> Detections:
        """The same detections with no reading results."""
        return replace(self, texts=None, text_scores=None)

    def filter(self, keep: Tensor) -> Detections:
        """The detections selected by a boolean mask or index tensor (texts and masks follow their boxes)."""
        texts = self.texts
        if texts is not None:
            index = keep.nonzero().flatten() if keep.dtype == torch.bool else keep.reshape(-1)
            texts = tuple(texts[int(i)] for i in index.tolist())
        return Detections(
            self.boxes[keep],
            self.labels[keep],
            self.scores[keep],
            self.image_size,
            None if self.masks is None else self.masks[keep],
            texts,
            None if self.text_scores is None else self.text_scores[keep.cpu()],
        )

    def above(self, score_threshold: float) -> Detections:
        return self.filter(self.scores >= score_threshold)

    def cpu(self) -> Detections:
        return replace(
            self,
            boxes=self.boxes.cpu(),
            labels=self.labels.cpu(),
            scores=self.scores.cpu(),
            masks=None if self.masks is None else self.masks.cpu(),
        )
