"""One prediction (detections with the text read in them) -> one `PageRecord`: values in reading order
and a status."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from detforge.errors import ConfigError
from detforge.indexing.order import estimate_skew, group_lines
from detforge.indexing.records import FileKey, FoundBox, PageRecord, Status
from detforge.inference.predictor import PredictionResult
from detforge.reading import ReadSettings
from detforge.structures.text import normalize_text

__all__ = ["IndexSettings", "page_record"]


@dataclass(frozen=True)
class IndexSettings:
    """What classifying a page needs: the model's `class_names` (by label), the reading settings in effect
    (`read.classes` says which boxes are values, `read.min_score` is the text confidence below which a value
    is unsure) and `fingerprint`, an id of the model and settings stored with each record."""

    class_names: tuple[str, ...]
    read: ReadSettings
    fingerprint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        if not isinstance(self.read, ReadSettings):
            raise ConfigError(f"IndexSettings.read: expected ReadSettings, got {type(self.read).__name__}")
        if self.read.classes is not None:
            unknown = [c for c in self.read.classes if c not in self.class_names]
            if unknown:
                raise ConfigError(f"read classes {unknown} are not classes of the model {list(self.class_names)}")

    @property
    def min_score(self) -> float:
        return float(self.read.min_score)

    def class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class_{label}"


def _status(values: Sequence[FoundBox], min_score: float) -> Status:
    if not values:
        return "nothing"
    return "read" if all(b.confident(min_score) for b in values) else "unsure"


def page_record(result: PredictionResult, key: FileKey, settings: IndexSettings) -> PageRecord:
    """The record of `result` (one photo): boxes of read classes become values in reading order (a read box
    whose text is missing, e.g. the recogniser failed on the photo, counts as an empty value of score 0);
    status "error" when the photo could not be decoded or predicted (`result.error`), "nothing" without a
    box of a read class, "read" when every value is non-empty with a text score >= `settings.min_score`,
    else "unsure". Boxes are clipped to the photo; boxes empty after clipping are left out."""
    if result.detections is None or result.image_size is None:
        return PageRecord(key, "error", error=result.error or "no detections", settings=settings.fingerprint)
    read_boxes: list[FoundBox] = []
    others: list[FoundBox] = []
    for index, label, raw_score, raw_box in result.clipped_indexed():
        # rounded as the record file keeps them, so a record read back equals the one made
        box = (round(raw_box[0], 2), round(raw_box[1], 2), round(raw_box[2], 2), round(raw_box[3], 2))
        score = round(raw_score, 5)
        name = settings.class_name(label)
        if not settings.read.reads(name):
            others.append(FoundBox(box, label, name, score))
            continue
        found = result.text(index)
        text, text_score = ("", 0.0) if found is None else found
        if not math.isfinite(text_score):
            text_score = 0.0
        value = normalize_text(text)
        read_boxes.append(FoundBox(box, label, name, score, text, round(min(max(text_score, 0.0), 1.0), 5), value))
    boxes = [b.box for b in read_boxes]
    skew = estimate_skew(boxes) if len(boxes) > 1 else 0.0
    ordered = tuple(read_boxes[i] for line in group_lines(boxes, skew) for i in line)
    return PageRecord(
        key,
        _status(ordered, settings.min_score),
        values=ordered,
        others=tuple(others),
        image_size=result.image_size,
        skew_degrees=round(skew, 2),
        settings=settings.fingerprint,
    )
