"""`detforge benchmark MODEL`: latency and throughput of one model per backend, on the same images."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor

from detforge.export.exporter import export_model
from detforge.export.metadata import ExportError
from detforge.export.openvino import OpenVinoDetector
from detforge.export.parity import (
    ParityTolerance,
    compare_detections,
    load_parity_images,
    synthetic_image,
    synthetic_images,
)
from detforge.export.runtime import OnnxDetector
from detforge.export.torchscript import TorchScriptDetector
from detforge.inference.predictor import SupportsPredict
from detforge.models.artifact import load_model
from detforge.progress import counting, tick
from detforge.structures.detections import Detections

__all__ = ["BenchmarkBackend", "BenchmarkRow", "benchmark_model", "benchmark_table"]

BenchmarkBackend = Literal["eager", "onnx", "openvino", "torchscript"]
"""openvino: the ONNX export run by OpenVINO (needs the openvino extra)."""


@dataclass(frozen=True)
class BenchmarkRow:
    """One backend's timing of `predict`, one image per call, over `images` images (the first of size
    `image_size`, height x width; all of them `image_sizes`; `synthetic`: generated, not photos), `runs`
    timed passes after warm-up: latency median/min/max (ms per image), throughput (images/s, from the
    median), and over all images the detections, the largest box (px) / score difference and the count
    mismatch against eager PyTorch."""

    backend: BenchmarkBackend
    image_size: tuple[int, int]
    runs: int
    median_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float
    detections: int
    max_box_diff_px: float
    max_score_diff: float
    count_mismatch: int
    images: int = 1
    image_sizes: tuple[tuple[int, int], ...] = ()
    synthetic: bool = False


def benchmark_model(
    model_path: str | Path,
    *,
    backends: Sequence[BenchmarkBackend] = ("eager", "onnx"),
    image_size: tuple[int, int] | None = None,
    runs: int = 10,
    warmup: int = 2,
    threads: int | None = None,
    images: Sequence[str | Path] | None = None,
) -> list[BenchmarkRow]:
    """Time the detforge model artifact at `model_path` on CPU in each of `backends` (exports go to a
    temporary folder and pass the usual parity check first, on the same images). All backends see the same
    images: the photo files `images` (in their displayed frame; give real ones, since a trained model finds
    little in a synthetic image, which makes it fast and the comparison weak), else one synthetic float32
    image of `image_size` (height, width; default min_size x 4/3 min_size). `threads` intra-op threads
    (default torch's current setting). One row per backend, in the order given.
    ExportError for an unknown backend; ValueError for runs < 1, warmup < 0, a bad image size or both
    `images` and `image_size`; InvalidImage naming an unreadable image."""
    unknown = [b for b in backends if b not in get_args(BenchmarkBackend)]
    if unknown or not backends:
        raise ExportError(f"backends: expected some of {get_args(BenchmarkBackend)}, got {list(backends)}")
    if runs < 1 or warmup < 0:
        raise ValueError(f"benchmark_model: expected runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    source = Path(model_path)
    detector, spec = load_model(source, device="cpu")
    if images:
        if image_size is not None:
            raise ValueError("benchmark_model: give images or image_size, not both")
        pictures = load_parity_images(list(images))
    elif image_size is not None:
        height, width = image_size
        if height < 1 or width < 1:
            raise ValueError(f"image_size: expected positive (height, width), got {image_size}")
        pictures = [synthetic_image(height, width)]
    else:
        pictures = synthetic_images(spec.min_size, spec.max_size)
    threads = threads if threads is not None else torch.get_num_threads()
    saved_threads = torch.get_num_threads()
    rows = []
    try:
        torch.set_num_threads(threads)
        reference = [detector.predict([picture])[0] for picture in pictures]
        with tempfile.TemporaryDirectory(prefix="detforge-bench-") as tmp:
            for backend in backends:
                model = _backend(backend, detector, source, Path(tmp), threads, pictures)
                passes = (warmup + runs) * len(pictures)
                with counting(f"benchmark {backend}", counts="pass", unit="pass", total=passes):
                    row = _time(backend, model, pictures, reference, runs, warmup)
                    rows.append(replace(row, synthetic=not images))
    finally:
        torch.set_num_threads(saved_threads)
    return rows


def _backend(
    backend: BenchmarkBackend, eager: SupportsPredict, source: Path, tmp: Path, threads: int, pictures: list[Tensor]
) -> SupportsPredict:
    if backend == "eager":
        return eager
    # a looser check than export's default: the benchmark reports the differences itself
    loose = ParityTolerance(box_px=1.0, score=0.01, count=2)
    target = "onnx" if backend == "openvino" else backend
    path = tmp / ("model.onnx" if target == "onnx" else "model.ts")
    if not path.is_file():  # onnx and openvino time the same file, exported once
        export_model(source, format=target, out=path, tolerance=loose, parity_images=pictures)
    if backend == "onnx":
        return OnnxDetector(path, device="cpu", threads=threads)
    if backend == "openvino":
        return OpenVinoDetector(path, threads=threads)
    return TorchScriptDetector(path, device="cpu")


def _time(
    backend: BenchmarkBackend,
    model: SupportsPredict,
    pictures: list[Tensor],
    reference: list[Detections],
    runs: int,
    warmup: int,
) -> BenchmarkRow:
    for _ in range(warmup):
        for picture in pictures:
            model.predict([picture])
            tick("pass")
    latencies = []
    detections = reference
    for _ in range(runs):
        detections = []
        for picture in pictures:
            start = time.perf_counter()
            detections.extend(model.predict([picture]))
            latencies.append((time.perf_counter() - start) * 1000.0)
            tick("pass")
    diff = compare_detections(reference, detections)
    median = statistics.median(latencies)
    return BenchmarkRow(
        backend=backend,
        image_size=(int(pictures[0].shape[1]), int(pictures[0].shape[2])),
        runs=runs,
        median_ms=median,
        min_ms=min(latencies),
        max_ms=max(latencies),
        images_per_s=1000.0 / median if median > 0 else float("inf"),
        detections=sum(len(d) for d in detections),
        max_box_diff_px=diff.max_box_diff_px,
        max_score_diff=diff.max_score_diff,
        count_mismatch=diff.count_mismatch,
        images=len(pictures),
        image_sizes=tuple((int(p.shape[1]), int(p.shape[2])) for p in pictures),
    )


def _images_cell(row: BenchmarkRow) -> str:
    if row.images == 1:
        return f"{row.image_size[0]}x{row.image_size[1]}"
    return f"{row.images} {'synthetic' if row.synthetic else 'photos'}"


def benchmark_table(rows: Sequence[BenchmarkRow]) -> str:
    """The rows as an aligned text table for the terminal, then a line naming the image sizes timed."""
    header = ("backend", "image", "median ms", "min ms", "max ms", "img/s", "dets", "box diff px", "score diff")
    lines = [header] + [
        (
            r.backend,
            _images_cell(r),
            f"{r.median_ms:.1f}",
            f"{r.min_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.images_per_s:.2f}",
            str(r.detections),
            f"{r.max_box_diff_px:.2g}",
            f"{r.max_score_diff:.2g}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines
    ]
    if rows and rows[0].image_sizes:
        first = rows[0]
        kind = "synthetic images" if first.synthetic else "photos"
        sizes = ", ".join(f"{h}x{w}" for h, w in first.image_sizes)
        note = (
            " (odd sizes, portrait and landscape; give --images for photos)"
            if first.synthetic and first.images > 1
            else ""
        )
        table.append(f"{kind}, height x width: {sizes}{note}")
    return "\n".join(table)
