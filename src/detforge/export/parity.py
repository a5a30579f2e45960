"""Parity check: does an exported model give the same detections as PyTorch on the same images?

Detections of each image are matched greedily in the reference's score order: each takes the unmatched
candidate of the same label with the closest box and score (so tied scores may come in any order).
The report gives the largest box difference (px), score difference, label disagreements, count mismatch
and mask disagreement.

Both sides compute in float32, and float32 rounding alone can move a box by more than the tolerance (a
model near ties, e.g. random weights, picks between near-identical boxes; some CPUs' kernels round
differently). So when the two disagree on an image and run_parity has an `exact` reference (the exporter passes
`Float64Reference`: PyTorch's own deployment graph in float64), the exported model passes on that image if it
agrees with the exact result instead: it is then at least as exact as PyTorch there. The report says which
reference it met.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from detforge.export.metadata import ExportError
from detforge.export.torchscript import graph_detections
from detforge.inference.predictor import SupportsPredict
from detforge.inference.sources import load_image_file
from detforge.progress import track
from detforge.structures.detections import Detections

if TYPE_CHECKING:
    from detforge.models.detector import Detector

__all__ = [
    "Float64Reference",
    "ParityReport",
    "ParityTolerance",
    "compare_detections",
    "load_parity_images",
    "parity_image_sizes",
    "resize_trap_sides",
    "run_parity",
    "synthetic_image",
    "synthetic_images",
]


@dataclass(frozen=True)
class ParityTolerance:
    """Largest acceptable differences: box_px (any box coordinate, pixels), score, count (detections per
    image, summed over images), masks (fraction of a mask's pixels that differ). Labels must agree.
    The defaults leave a margin of about ten times the differences the exports show with random weights
    (benchmarks/README.md)."""

    box_px: float = 0.05
    score: float = 1e-3
    count: int = 0
    masks: float = 0.01

    def __post_init__(self) -> None:
        for name in ("box_px", "score", "masks"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"ParityTolerance.{name}: expected a number >= 0, got {value!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"ParityTolerance.count: expected an integer >= 0, got {self.count!r}")


@dataclass(frozen=True)
class ParityReport:
    """Differences between reference (PyTorch) and candidate (exported) detections over `image_sizes`
    ((height, width) each). max_box_diff_px / max_score_diff: over matched pairs (0.0 with none);
    count_mismatch: sum over images of |reference count - candidate count|; label_mismatch: matched pairs
    with different labels; max_mask_diff: largest fraction of differing mask pixels (0.0 without masks);
    detections: reference detections compared. reference: what the candidate was compared with ("PyTorch", or
    which images it met the exact float64 result on instead; pytorch_box_diff_px then holds its largest box
    difference from PyTorch float32, else None)."""

    image_sizes: tuple[tuple[int, int], ...]
    detections: int
    max_box_diff_px: float
    max_score_diff: float
    count_mismatch: int
    label_mismatch: int
    max_mask_diff: float
    reference: str = "PyTorch"
    pytorch_box_diff_px: float | None = None

    def failures(self, tolerance: ParityTolerance) -> list[str]:
        """One sentence per difference beyond `tolerance`; [] when they agree."""
        out = []
        if self.max_box_diff_px > tolerance.box_px:
            out.append(f"boxes differ by up to {self.max_box_diff_px:.4g} px (tolerance {tolerance.box_px:g})")
        if self.max_score_diff > tolerance.score:
            out.append(f"scores differ by up to {self.max_score_diff:.4g} (tolerance {tolerance.score:g})")
        if self.count_mismatch > tolerance.count:
            out.append(f"detection counts differ by {self.count_mismatch} (tolerance {tolerance.count})")
        if self.label_mismatch:
            out.append(f"{self.label_mismatch} matched detections have different labels")
        if self.max_mask_diff > tolerance.masks:
            out.append(
                f"masks differ on up to {self.max_mask_diff:.2%} of their pixels (tolerance {tolerance.masks:.2%})"
            )
        return out

    def passed(self, tolerance: ParityTolerance) -> bool:
        return not self.failures(tolerance)


def _match(ref: Detections, cand: Detections) -> list[tuple[int, int]]:
    """(reference index, candidate index) pairs: reference detections in score order each take the free
    candidate closest in box (px) plus score (scaled by the image's longer side), same label first."""
    if len(ref) == 0 or len(cand) == 0:
        return []
    scale = float(max(ref.image_size))
    cost = (ref.boxes[:, None, :] - cand.boxes[None, :, :]).abs().amax(dim=2)  # [N_ref, N_cand] px
    cost = cost + (ref.scores[:, None] - cand.scores[None, :]).abs() * scale
    cost = cost + (ref.labels[:, None] != cand.labels[None, :]).float() * 1e9
    pairs = []
    for i in range(min(len(ref), len(cand))):
        j = int(torch.argmin(cost[i]))
        cost[:, j] = float("inf")
        pairs.append((i, j))
    return pairs


def compare_detections(reference: Sequence[Detections], candidate: Sequence[Detections]) -> ParityReport:
    """Compare two models' detections of the same images (same order), matched as in the module docstring."""
    if len(reference) != len(candidate):
        raise ValueError(f"compare_detections: {len(reference)} reference and {len(candidate)} candidate images")
    box = score = mask = 0.0
    count = labels = total = 0
    for ref, cand in zip(reference, candidate, strict=True):
        ref, cand = ref.cpu(), cand.cpu()
        total += len(ref)
        count += abs(len(ref) - len(cand))
        for i, j in _match(ref, cand):
            box = max(box, float((ref.boxes[i] - cand.boxes[j]).abs().max()))
            score = max(score, abs(float(ref.scores[i]) - float(cand.scores[j])))
            labels += int(ref.labels[i] != cand.labels[j])
            if ref.masks is not None and cand.masks is not None:
                if ref.masks.shape[1:] != cand.masks.shape[1:]:
                    mask = 1.0
                else:
                    mask = max(mask, float((ref.masks[i] != cand.masks[j]).float().mean()))
    return ParityReport(
        image_sizes=tuple(r.image_size for r in reference),
        detections=total,
        max_box_diff_px=box,
        max_score_diff=score,
        count_mismatch=count,
        label_mismatch=labels,
        max_mask_diff=mask,
    )


def synthetic_image(height: int, width: int, *, seed: int = 0) -> Tensor:
    """A float32 [3, height, width] image in [0, 1]: dim noise with four flat rectangles; the same per seed."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand((3, height, width), generator=g) * 0.3
    for _ in range(4):
        y0 = int(torch.randint(0, max(1, height // 2), (1,), generator=g))
        x0 = int(torch.randint(0, max(1, width // 2), (1,), generator=g))
        h = int(torch.randint(height // 8 + 1, height // 2 + 2, (1,), generator=g))
        w = int(torch.randint(width // 8 + 1, width // 2 + 2, (1,), generator=g))
        image[:, y0 : y0 + h, x0 : x0 + w] = torch.rand((3, 1, 1), generator=g)
    return image


def _float32_side(side: int, target: int) -> int:
    """`side` resized to `target` with torchvision's traced float32 arithmetic (floor(side * (target / side)))."""
    scale = np.float32(target) / np.float32(side)
    return int(np.floor(np.float32(side) * scale))


def resize_trap_sides(target: int, *, start: int, count: int) -> list[int]:
    """Up to `count` sides >= `start` (below 3 * `target`) whose resize to `target` px floors to another size
    in float32 than in float64 (eager torchvision): a graph computing the resized size in float32 sees one
    row or column fewer or more there (941 with target 512 gives 511 eagerly, 512 in float32)."""
    out = []
    for side in range(max(start, 1), 3 * target):
        if _float32_side(side, target) != math.floor(side * (target / side)):
            out.append(side)
            if len(out) == count:
                break
    return out


def parity_image_sizes(min_size: int, max_size: int) -> list[tuple[int, int]]:
    """(height, width) of the default parity images for a model resizing to `min_size`..`max_size`: odd,
    photo-like sizes a resize cannot pass by luck: a portrait and a landscape whose shorter side is a
    `resize_trap_sides` one (when there are), a wide landscape where `max_size` limits the scale, and a small
    portrait that is scaled up."""
    traps = resize_trap_sides(min_size, start=math.ceil(min_size * 1.3), count=2)
    traps += [(round(min_size * 1.37) | 1) + 2 * i for i in range(2 - len(traps))]
    return [
        (round(traps[0] * 1.397) | 1, traps[0]),  # a phone photo, portrait (1429 x 1023)
        (traps[1], round(traps[1] * 4 / 3) | 1),  # landscape 4:3
        (round(min_size * 0.75) | 1, round(max(max_size, min_size) * 1.25) | 1),  # wide: max_size binds
        (round(min_size * 0.9) | 1, round(min_size * 0.65) | 1),  # small portrait, scaled up
    ]


def synthetic_images(min_size: int, max_size: int, *, seed: int = 0) -> list[Tensor]:
    """`synthetic_image`s of the `parity_image_sizes` for `min_size`..`max_size` (portrait and landscape, odd
    sizes, resized down, up and by the `max_size` limit), the same per seed."""
    sizes = parity_image_sizes(min_size, max_size)
    return [synthetic_image(h, w, seed=seed + i) for i, (h, w) in enumerate(sizes)]


def load_parity_images(images: Sequence[str | Path | Tensor]) -> list[Tensor]:
    """float32 [3, H, W] images in [0, 1]: files are read in their displayed (EXIF-oriented) frame, tensors
    are taken as they are (uint8 ones are divided by 255)."""
    out = []
    for i, image in enumerate(images):
        if isinstance(image, Tensor):
            if image.ndim != 3 or image.shape[0] != 3:
                raise ValueError(f"parity_images[{i}]: expected a [3, H, W] tensor, got {list(image.shape)}")
            out.append(image.float().div(255.0) if image.dtype == torch.uint8 else image.float())
        else:
            array = np.asarray(load_image_file(image), dtype=np.uint8)
            out.append(torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0))
    return out


class Float64Reference:
    """A detector's deployment graph (`Detector.export_graph()`) run in float64: the detections float32
    arithmetic approximates (SupportsPredict; built on the first call, a copy of the model's weights)."""

    def __init__(self, detector: Detector) -> None:
        self.num_classes = detector.num_classes
        self._detector = detector

    @functools.cached_property
    def _graph(self) -> torch.nn.Module:
        return copy.deepcopy(self._detector.export_graph()).cpu().eval().double()

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        """Detections of float32 [3, H, W] images in [0, 1], as the exported graph gives them (see
        `torchscript.graph_detections`), computed in float64 and returned in float32."""
        out = []
        with torch.inference_mode():
            for image in images:
                outputs = self._graph(image.detach().cpu().double())
                out.append(graph_detections(list(outputs), (int(image.shape[1]), int(image.shape[2]))))
        return out


def _predict_each(model: SupportsPredict, images: Sequence[Tensor], desc: str) -> list[Detections]:
    # one image per call: a batch pads its images to a common size, which changes a detector's output
    return [model.predict([image])[0] for image in track(images, desc=desc)]


def run_parity(
    reference: SupportsPredict,
    candidate: SupportsPredict,
    images: Sequence[Tensor],
    *,
    tolerance: ParityTolerance = ParityTolerance(),
    what: str = "exported model",
    exact: SupportsPredict | None = None,
) -> ParityReport:
    """Predict `images` (one at a time) with both models and compare; when they disagree beyond `tolerance`
    and `exact` (e.g. `Float64Reference(detector)`) is given, the images where they disagree are compared
    with `exact` instead (see the module docstring). ExportError naming `what` and every difference beyond
    `tolerance` when the candidate meets neither, else the report."""
    if not images:
        raise ValueError("run_parity: expected at least one image")
    cand = _predict_each(candidate, images, "parity: exported")
    ref = _predict_each(reference, images, "parity: PyTorch")
    report = compare_detections(ref, cand)
    failures = report.failures(tolerance)
    if failures and exact is not None:
        off = [i for i in range(len(images)) if not compare_detections([ref[i]], [cand[i]]).passed(tolerance)]
        exact_dets = dict(zip(off, _predict_each(exact, [images[i] for i in off], "parity: float64"), strict=True))
        chosen = [exact_dets.get(i, ref[i]) for i in range(len(images))]
        exact_report = compare_detections(chosen, cand)
        if exact_report.passed(tolerance):
            which = f"PyTorch float64 on {len(off)} of {len(images)} images, PyTorch on the others"
            return replace(exact_report, reference=which, pytorch_box_diff_px=report.max_box_diff_px)
        beyond = "; ".join(exact_report.failures(tolerance))
        failures.append(f"against the same graph in float64 where PyTorch disagrees: {beyond}")
    if failures:
        sizes = ", ".join(f"{h}x{w}" for h, w in report.image_sizes)
        raise ExportError(
            f"{what}: parity check against PyTorch failed on {len(images)} images ({sizes}, "
            f"{report.detections} reference detections): " + "; ".join(failures)
        )
    return report
