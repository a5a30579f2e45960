"""Predictions as Label Studio tasks with `predictions` (pre-annotations), one task per image.

Label Studio keeps rectangles in percent of the image (`original_width` x `original_height`, the
displayed frame); `from_name`/`to_name` must match the project's labeling config, e.g.
`<Image name="image" value="$image"/><RectangleLabels name="label" toName="image">`. The values read go
in a per-region `textarea` result (Label Studio's OCR template: `<TextArea name="transcription"
toName="image" perRegion="true"/>`) sharing the rectangle's region `id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detforge.fileio import atomic_write_json
from detforge.inference.predictor import PredictionResult
from detforge.structures.boxes import percent_xywh

__all__ = ["labelstudio_tasks", "write_labelstudio"]


def _regions(
    result: PredictionResult, names: Sequence[str], from_name: str, to_name: str, text_name: str
) -> list[dict[str, Any]]:
    assert result.detections is not None and result.image_size is not None
    height, width = result.image_size
    regions: list[dict[str, Any]] = []
    for index, label, score, box in result.clipped_indexed():
        if not 0 <= label < len(names):
            raise ValueError(f"write_labelstudio: {result.source}: label {label} has no class name (have {len(names)})")
        x, y, w, h = percent_xywh(box, width, height)
        value = {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [names[label]],
        }
        frame = {"original_width": width, "original_height": height, "image_rotation": 0}
        region_id = f"r{sum(r['type'] == 'rectanglelabels' for r in regions) + 1}"
        regions.append(
            {
                "id": region_id,
                "type": "rectanglelabels",
                "from_name": from_name,
                "to_name": to_name,
                **frame,
                "value": value,
                "score": round(float(score), 6),
            }
        )
        read = result.text(index)
        if read is not None:
            geometry = {k: v for k, v in value.items() if k != "rectanglelabels"}
            regions.append(
                {
                    "id": region_id,
                    "type": "textarea",
                    "from_name": text_name,
                    "to_name": to_name,
                    **frame,
                    "value": {**geometry, "text": [read[0]]},
                    "score": round(read[1], 6),
                }
            )
    return regions


def labelstudio_tasks(
    results: Sequence[PredictionResult],
    class_names: Sequence[str],
    *,
    model_version: str = "detforge",
    image_prefix: str = "",
    from_name: str = "label",
    to_name: str = "image",
    text_name: str = "transcription",
) -> list[dict[str, Any]]:
    """The Label Studio task list of the successful results (see `write_labelstudio`)."""
    names = [str(n) for n in class_names]
    tasks: list[dict[str, Any]] = []
    for result in results:
        if result.detections is None or result.image_size is None:
            continue
        regions = _regions(result, names, from_name, to_name, text_name)
        scores = [r["score"] for r in regions if r["type"] == "rectanglelabels"]
        prediction = {
            "model_version": model_version,
            "score": round(sum(scores) / len(scores), 6) if scores else 0.0,
            "result": regions,
        }
        task = {"id": len(tasks) + 1, "data": {to_name: image_prefix + result.source}, "predictions": [prediction]}
        tasks.append(task)
    return tasks


def write_labelstudio(
    results: Sequence[PredictionResult],
    out: str | Path,
    class_names: Sequence[str],
    *,
    model_version: str = "detforge",
    image_prefix: str = "",
    from_name: str = "label",
    to_name: str = "image",
    text_name: str = "transcription",
) -> Path:
    """Write `out` (.json): a list of tasks, one per successful result, in result order.

    Task: `id` (1..N), `data[to_name]` = `image_prefix` + the source name (e.g. a prefix of
    "/data/local-files/?d=photos/" for local storage), and one prediction with `model_version`, `score`
    (mean detection score, 0 without detections) and a `rectanglelabels` result per detection: x, y,
    width, height in percent of `original_width` x `original_height` (clipped to the image), its class
    name and `score`. A detection that was read adds a `textarea` result named `text_name` with the same
    region `id` and geometry, `value.text` = [the value read] and `score` = its text confidence. Atomic.
    """
    tasks = labelstudio_tasks(
        results,
        class_names,
        model_version=model_version,
        image_prefix=image_prefix,
        from_name=from_name,
        to_name=to_name,
        text_name=text_name,
    )
    return atomic_write_json(out, tasks)
