"""COCO's XYWH is computed by `structures.boxes` alone: the evaluation keeps no copy of the conversion."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import detforge.evaluation
from detforge.structures.boxes import xyxy_to_xywh, xyxy_to_xywh_array

# A width/height taken as a difference of corners, as a tuple/list expression or on array columns.
_COPIES = re.compile(r"x1 - x0, y1 - y0|\[:, 2:\] - \w+\[:, :2\]|\[\.\.\., 2:\] - \w+\[\.\.\., :2\]")


def test_evaluation_converts_xyxy_to_xywh_only_through_structures_boxes() -> None:
    folder = Path(detforge.evaluation.__file__).parent
    copies = [f"{p.name}: {m.group(0)}" for p in sorted(folder.glob("*.py")) for m in _COPIES.finditer(p.read_text())]
    assert copies == []


def test_array_and_single_box_conversions_agree() -> None:
    boxes = np.array([[1.5, 2.25, 11.5, 22.0], [0.1, 0.2, 0.3, 0.7]])
    assert xyxy_to_xywh_array(boxes).tolist() == [list(xyxy_to_xywh(b)) for b in boxes.tolist()]
