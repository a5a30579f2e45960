"""The `--json` outputs of the verbs whose API results have no JSON form of their own (shapes documented in
docs/cli-json.md). Only plain JSON types come out: numbers, strings, lists, objects, null."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detforge.export import BenchmarkRow, ExportReport
    from detforge.inference import PredictionResult

__all__ = ["benchmark_json", "export_json", "predictions_json", "print_json"]


def print_json(value: Any) -> None:
    """Print `value` to stdout as indented JSON (paths as strings; NaN and infinities as null)."""
    print(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def predictions_json(results: Sequence[PredictionResult], out: Path | None) -> dict[str, Any]:
    """`detforge predict --json`: counts, the output folder and, per image, its boxes (XYXY pixels clipped
    to the image, label = the model's class index, score, and the text read when the box was read)."""
    images = []
    for r in results:
        boxes = []
        for index, label, score, box in r.clipped_indexed():
            item: dict[str, Any] = {"box": [round(v, 2) for v in box], "label": label, "score": round(score, 5)}
            read = r.text(index)
            if read is not None:
                item["text"], item["text_score"] = read[0], round(read[1], 5)
            boxes.append(item)
        size = list(r.image_size) if r.image_size is not None else None
        images.append({"source": r.source, "image_size": size, "error": r.error, "detections": boxes})
    return {
        "images": sum(1 for r in results if r.ok),
        "failed": sum(1 for r in results if not r.ok),
        "detections": sum(len(r.clipped_indexed()) for r in results),
        "out": out,
        "results": images,
    }


def export_json(report: ExportReport) -> dict[str, Any]:
    """`detforge export --json`: the file written, its metadata and the parity check's numbers."""
    m, p = report.metadata, report.parity
    return {
        "path": report.path,
        "format": report.format,
        "size_bytes": report.size_bytes,
        "seconds": round(report.seconds, 3),
        "model": m.model_name,
        "class_names": list(m.class_names),
        "score_threshold": m.score_threshold,
        "min_size": m.min_size,
        "max_size": m.max_size,
        "parity": {
            "images": len(p.image_sizes),
            "image_sizes": [list(s) for s in p.image_sizes],
            "detections": p.detections,
            "max_box_diff_px": p.max_box_diff_px,
            "max_score_diff": p.max_score_diff,
            "count_mismatch": p.count_mismatch,
            "label_mismatch": p.label_mismatch,
            "max_mask_diff": p.max_mask_diff,
            "reference": p.reference,
            "pytorch_box_diff_px": p.pytorch_box_diff_px,
        },
    }


def benchmark_json(rows: Sequence[BenchmarkRow]) -> list[dict[str, Any]]:
    """`detforge benchmark --json`: one object per backend, the fields of BenchmarkRow."""
    return [
        {
            "backend": r.backend,
            "images": r.images,
            "image_size": list(r.image_size),
            "image_sizes": [list(size) for size in r.image_sizes],
            "synthetic": r.synthetic,
            "runs": r.runs,
            "median_ms": r.median_ms,
            "min_ms": r.min_ms,
            "max_ms": r.max_ms,
            "images_per_s": r.images_per_s,
            "detections": r.detections,
            "max_box_diff_px": r.max_box_diff_px,
            "max_score_diff": r.max_score_diff,
            "count_mismatch": r.count_mismatch,
        }
        for r in rows
    ]
