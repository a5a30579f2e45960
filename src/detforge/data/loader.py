"""From a `Dataset` to batches of float images and `Target`s, deterministically, in worker processes.

Determinism: `build_loader` gives every item it loads its own seed, a pure function of
``(seed, epoch, rank, position in the epoch)``, and the augmentation of that item runs under that seed
(in a forked RNG, so the caller's RNG is untouched). The same run therefore sees the same augmented
batches whatever `num_workers` is, and a run resumed from `TrainingSampler.state_dict()` sees exactly
the batches the interrupted run would have seen.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch
from faster_coco_eval.core import mask as mask_utils
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, SequentialSampler
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from detforge.data.clean import sanitize
from detforge.data.dataset import Dataset
from detforge.data.images import load_image
from detforge.data.sampler import TrainingSampler
from detforge.data.transforms import DetectionTransform, LongestSideCap, to_float_image
from detforge.errors import DatasetError, InvalidImage
from detforge.structures import RLE, Annotation, ImageRecord, Polygons, Problem
from detforge.structures.detections import Target

__all__ = [
    "WORKER_TIMEOUT_S",
    "Batch",
    "DetectionDataset",
    "SeededIndex",
    "build_loader",
    "collate",
    "default_num_workers",
    "item_seed",
]

WORKER_TIMEOUT_S = 300.0
"""Seconds the loader waits for a batch from its workers before raising instead of hanging."""

_MASK63 = (1 << 63) - 1
_MASK64 = (1 << 64) - 1


class SeededIndex(NamedTuple):
    """A dataset index plus the seed its augmentation must run under (what `build_loader` passes)."""

    dataset_index: int
    seed: int


class DetectionDataset(torch.utils.data.Dataset[tuple[Tensor, Target]]):
    """Decoded, augmented training samples of a `Dataset`.

    On construction the dataset is passed once through `detforge.data.clean.sanitize` (boxes clipped to
    their image, unlearnable ones dropped; see `problems`). Item `i` is `dataset.images[i]`:
    ``(image, target)`` where image is float32 [3, H, W] in [0, 1] after `transforms`, and target's boxes
    are XYXY pixels in that transformed frame, labels the contiguous class index (`Categories.index_of_id`),
    masks (with `with_masks`) uint8 [N, H, W] rasterised from polygons/RLE (a box without a mask becomes
    a filled rectangle). Crowd annotations are left out of targets. Images are decoded with
    `detforge.data.images.load_image`, so pixels and boxes are in the EXIF-oriented (displayed) frame.
    Any failure to decode raises `DatasetError` naming the file, the dataset index and the image id.
    """

    def __init__(self, dataset: Dataset, transforms: DetectionTransform | None, *, with_masks: bool = False) -> None:
        cleaned, problems = sanitize(dataset)
        self.dataset = cleaned
        self.problems: tuple[Problem, ...] = problems
        self.transforms = transforms
        self.with_masks = with_masks
        index_of = {c.id: i for i, c in enumerate(cleaned.categories)}
        self._records: tuple[ImageRecord, ...] = cleaned.images
        self._anns: list[tuple[Annotation, ...]] = []
        self._boxes: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        for im in self._records:
            anns = tuple(a for a in cleaned.annotations_of(im.id) if not a.iscrowd)
            self._anns.append(anns)
            self._boxes.append(np.asarray([a.bbox for a in anns], dtype=np.float32).reshape(-1, 4))
            self._labels.append(np.asarray([index_of[a.category_id] for a in anns], dtype=np.int64))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, key: int | SeededIndex) -> tuple[Tensor, Target]:
        if isinstance(key, SeededIndex):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(key.seed)
                return self._load(key.dataset_index)
        return self._load(int(key))

    def _where(self, i: int) -> str:
        im = self._records[i]
        return f"image {im.path} (dataset index {i}, image id {im.id})"

    def _load(self, i: int) -> tuple[Tensor, Target]:
        if not 0 <= i < len(self._records):
            raise IndexError(f"DetectionDataset: index {i} out of range for {len(self._records)} images")
        record = self._records[i]
        try:
            pil = load_image(record.path)
        except InvalidImage as exc:
            raise DatasetError(f"{self._where(i)} cannot be decoded: {exc}") from None
        width, height = pil.size
        if record.width and record.height and (record.width, record.height) != (width, height):
            raise DatasetError(
                f"{self._where(i)}: decoded size {width}x{height} (after EXIF orientation) differs from the "
                f"{record.width}x{record.height} the annotations give; boxes would be misplaced "
                "(run `detforge data check`)"
            )
        image = tv_tensors.Image(F.pil_to_tensor(pil))
        boxes = tv_tensors.BoundingBoxes(
            torch.from_numpy(self._boxes[i].copy()),
            format=tv_tensors.BoundingBoxFormat.XYXY,
            canvas_size=(height, width),
        )
        labels = torch.from_numpy(self._labels[i].copy())
        masks = None
        if self.with_masks:
            cap = self.transforms.max_size if self.transforms is not None else None
            if cap is not None and max(height, width) > cap:
                # the pipeline's own first step, done here so that masks are rasterised at the small size
                image, boxes = LongestSideCap(cap)(image, boxes)
            masks = tv_tensors.Mask(self._rasterise(i, (height, width), (image.shape[-2], image.shape[-1])))
        if self.transforms is not None:
            image, boxes, labels, masks = self.transforms(image, boxes, labels, masks)
        target = Target(
            boxes=boxes.as_subclass(Tensor).to(torch.float32),
            labels=labels.as_subclass(Tensor).to(torch.int64),
            image_id=record.id,
            masks=None if masks is None else masks.as_subclass(Tensor).to(torch.uint8),
        )
        return to_float_image(image), target

    def _rasterise(self, i: int, source: tuple[int, int], size: tuple[int, int]) -> Tensor:
        """uint8 [N, *size] masks of image i's objects, whose coordinates are in a `source` (h, w) frame."""
        height, width = size
        sy, sx = height / source[0], width / source[1]
        out = np.zeros((len(self._anns[i]), height, width), dtype=np.uint8)
        for k, ann in enumerate(self._anns[i]):
            seg = ann.segmentation
            if isinstance(seg, Polygons):
                scaled = [[v * (sx if j % 2 == 0 else sy) for j, v in enumerate(p)] for p in seg.points]
                rle = mask_utils.merge(mask_utils.frPyObjects(scaled, height, width))
            elif isinstance(seg, RLE):
                out[k] = self._decode_rle(i, ann, seg, source, size)
                continue
            else:
                x0, y0, x1, y1 = ann.bbox
                out[k, round(y0 * sy) : round(y1 * sy), round(x0 * sx) : round(x1 * sx)] = 1
                continue
            out[k] = mask_utils.decode(rle)
        return torch.from_numpy(out)

    def _decode_rle(
        self, i: int, ann: Annotation, seg: RLE, source: tuple[int, int], size: tuple[int, int]
    ) -> np.ndarray:
        height, width = source
        if tuple(seg.size) != source:
            raise DatasetError(
                f"{self._where(i)}: annotation {ann.id} has an RLE mask of size {tuple(seg.size)} "
                f"(height, width); expected the image's {source}"
            )
        counts = list(seg.counts) if isinstance(seg.counts, tuple) else seg.counts
        rle: object = {"counts": counts, "size": [height, width]}
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(rle, height, width)
        full = torch.from_numpy(np.ascontiguousarray(mask_utils.decode(rle)))
        if size == source:
            return full.numpy()
        return F.resize(tv_tensors.Mask(full[None]), list(size))[0].numpy()


@dataclass(frozen=True)
class Batch:
    """A training batch: images float32 [3, H_i, W_i] in [0, 1] (sizes may differ) and their targets."""

    images: list[Tensor]
    targets: list[Target]

    def __post_init__(self) -> None:
        if len(self.images) != len(self.targets):
            raise ValueError(f"Batch: {len(self.images)} images but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch on `device`."""
        return Batch(
            [im.to(device, non_blocking=non_blocking) for im in self.images],
            [t.to(device, non_blocking=non_blocking) for t in self.targets],
        )

    def pin_memory(self) -> Batch:
        """The same batch in page-locked memory (called by DataLoader when `pin_memory=True`)."""
        targets = [
            Target(t.boxes.pin_memory(), t.labels.pin_memory(), t.image_id, _pinned(t.masks)) for t in self.targets
        ]
        return Batch([im.pin_memory() for im in self.images], targets)


def _pinned(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None else tensor.pin_memory()


def collate(batch: Sequence[tuple[Tensor, Target]]) -> Batch:
    """Group `DetectionDataset` items into a `Batch` (no padding; images keep their own sizes)."""
    return Batch([image for image, _ in batch], [target for _, target in batch])


def _mix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def item_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """The augmentation seed (0 <= s < 2**63) of the item at `position` of `epoch` on `rank`."""
    h = 0
    for value in (seed, epoch, rank, position):
        h = _mix64(h ^ (value & _MASK64))
    return h & _MASK63


class _SeededBatchSampler:
    """Batches of `SeededIndex` from a sampler, seeding each item from (seed, epoch, rank, position).

    epoch, rank and position are read from the sampler (`TrainingSampler` has them); a sampler without an
    `epoch` gets one counted here, one per pass.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, seed: int, repeat: bool = False) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.repeat = repeat
        self._passes = 0  # epoch counter for samplers that have no `epoch`

    def __iter__(self) -> Iterator[list[SeededIndex]]:
        if self.repeat and isinstance(self.sampler, TrainingSampler):
            return self._endless(self.sampler)
        return self._one_pass()

    def _endless(self, sampler: TrainingSampler) -> Iterator[list[SeededIndex]]:
        """The current epoch from its position, then every following epoch from 0, batch by batch."""
        epoch, start = sampler.epoch, sampler.position
        while True:
            indices = sampler.indices_of(epoch)[start:]
            for first in range(0, len(indices), self.batch_size):
                yield [
                    SeededIndex(int(index), item_seed(self.seed, epoch, sampler.rank, start + first + k))
                    for k, index in enumerate(indices[first : first + self.batch_size])
                ]
            epoch, start = epoch + 1, 0

    def _one_pass(self) -> Iterator[list[SeededIndex]]:
        epoch = getattr(self.sampler, "epoch", None)
        if epoch is None:
            epoch, self._passes = self._passes, self._passes + 1
        rank = int(getattr(self.sampler, "rank", 0))
        start = int(getattr(self.sampler, "position", 0))
        batch: list[SeededIndex] = []
        for k, index in enumerate(self.sampler):
            batch.append(SeededIndex(int(index), item_seed(self.seed, int(epoch), rank, start + k)))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def __len__(self) -> int:
        return math.ceil(len(cast(Sized, self.sampler)) / self.batch_size)


def _init_worker(worker_id: int) -> None:
    # One torch thread per worker (the workers are the parallelism); seed the other RNGs from torch's.
    torch.set_num_threads(1)
    base = torch.initial_seed() % 2**32
    random.seed(base)
    np.random.seed(base)


def build_loader(
    dataset: DetectionDataset,
    *,
    batch_size: int,
    sampler: Sampler[int] | None,
    num_workers: int,
    pin_memory: bool = False,
    seed: int = 0,
    repeat: bool = False,
) -> DataLoader[tuple[Tensor, Target]]:
    """A DataLoader yielding `Batch`es of `dataset` in `sampler`'s order (all items in order when None).

    Every item is augmented under its own seed (see the module docstring), so batches depend only on
    `seed`, the sampler's epoch/position and the dataset, not on `num_workers`. The last batch may be
    smaller. With `num_workers > 0` workers persist across epochs and a worker that produces nothing for
    `WORKER_TIMEOUT_S` seconds raises instead of hanging. The loader never touches torch's global RNG.
    `repeat` (with a `TrainingSampler`): one iterator runs through epoch after epoch, so workers prepare the
    next epoch's first batches while the last ones train (no stall at epoch starts; the batches are the
    same as successive one-epoch passes); the consumer advances the sampler (`TrainingSampler.advance`).
    """
    if batch_size < 1:
        raise ValueError(f"build_loader: batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"build_loader: num_workers must be >= 0, got {num_workers}")
    order: Sampler[int] = sampler if sampler is not None else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        batch_sampler=_SeededBatchSampler(order, batch_size, seed, repeat),  # type: ignore[arg-type]
        num_workers=num_workers,
        collate_fn=collate,  # type: ignore[arg-type]
        pin_memory=pin_memory,
        worker_init_fn=_init_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        timeout=WORKER_TIMEOUT_S if num_workers > 0 else 0,
        generator=torch.Generator().manual_seed(seed),
    )


def default_num_workers(gpu: bool = False) -> int:
    """Loader worker processes for this machine: 0 (load in the training process) on 1-2 CPUs, else
    ``min(4, cpus - 1)``; when a GPU trains (`gpu`), ``min(8, cpus - 1)``.

    A GPU step is short, so a GPU run needs more decoding hands than a CPU run. On two cores a worker
    only competes with the training process (and with torch's own threads) for the same cores, and each
    batch pays for the trip between processes, so in-process loading is faster there (the measurements
    are in benchmarks/README.md).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpus <= 2:
        return 0
    return min(8 if gpu else 4, cpus - 1)
