"""One prediction result as a JSON object (a line of a shard file) and back, losslessly: boxes and scores
are float32 values, which a JSON number (a Python float) holds exactly, so results read back from shards
write byte-identical output files. Instance masks are kept as COCO run-length encodings (exact)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detforge.inference.predictor import PredictionResult
from detforge.structures.detections import Detections

__all__ = ["result_from_dict", "result_to_dict"]


def result_to_dict(result: PredictionResult) -> dict[str, Any]:
    """JSON form of `result`: source, path (absolute, or null), size [height, width] (or null), error (or null) and,
    for a success, boxes (XYXY pixels), labels, scores, when reading ran texts and text_scores (null for a
    box that was not read), and for a model with masks `masks` (one COCO RLE counts string per box)."""
    d: dict[str, Any] = {
        "source": result.source,
        "path": None if result.path is None else os.path.abspath(result.path),
        "size": None if result.image_size is None else list(result.image_size),
        "error": result.error,
    }
    dets = result.detections
    if dets is not None:
        d["boxes"] = dets.boxes.tolist()
        d["labels"] = dets.labels.tolist()
        d["scores"] = dets.scores.tolist()
        if dets.texts is not None and dets.text_scores is not None:
            d["texts"] = list(dets.texts)
            d["text_scores"] = [None if math.isnan(s) else s for s in dets.text_scores.tolist()]
        if dets.masks is not None:
            d["masks"] = _encode_masks(dets.masks)
    return d


def _encode_masks(masks: torch.Tensor) -> list[str]:
    """[N, H, W] masks -> N COCO RLE `counts` strings (the size is the result's)."""
    from faster_coco_eval.core import mask as mask_utils

    if masks.shape[0] == 0:
        return []
    pixels = np.asfortranarray(masks.cpu().numpy().astype(np.uint8).transpose(1, 2, 0))
    return [rle["counts"].decode("ascii") for rle in mask_utils.encode(pixels)]


def _decode_masks(counts: list[str], size: tuple[int, int]) -> torch.Tensor:
    """Inverse of `_encode_masks`: [N, H, W] bool."""
    from faster_coco_eval.core import mask as mask_utils

    if not counts:
        return torch.zeros((0, *size), dtype=torch.bool)
    rles = [{"size": [size[0], size[1]], "counts": c.encode("ascii")} for c in counts]
    return torch.from_numpy(np.ascontiguousarray(mask_utils.decode(rles).transpose(2, 0, 1))).to(torch.bool)


def result_from_dict(d: Mapping[str, Any]) -> PredictionResult:
    """Inverse of `result_to_dict`; KeyError / ValueError / TypeError for a malformed object."""
    size = None if d["size"] is None else (int(d["size"][0]), int(d["size"][1]))
    path = None if d.get("path") is None else Path(d["path"])
    if d.get("error") is not None:
        return PredictionResult(str(d["source"]), size, None, str(d["error"]), path)
    if size is None:
        raise ValueError(f"{d['source']}: a result without error needs a size")
    n = len(d["boxes"])
    dets = Detections(
        torch.tensor(d["boxes"], dtype=torch.float32).reshape(n, 4),
        torch.tensor(d["labels"], dtype=torch.int64).reshape(n),
        torch.tensor(d["scores"], dtype=torch.float32).reshape(n),
        size,
        masks=None if d.get("masks") is None else _decode_masks(list(d["masks"]), size),
    )
    if d.get("texts") is not None:
        scores = [math.nan if s is None else float(s) for s in d["text_scores"]]
        dets = dets.with_texts([None if t is None else str(t) for t in d["texts"]], scores)
    return PredictionResult(str(d["source"]), size, dets, None, path)
