"""What the index knows about one photo: the values read in reading order, with boxes and confidences, and
a status. `PageRecord` is the one typed value between the indexing stages (classification, the record
file, the CSV/JSON index, sorting); `to_dict` / `from_dict` are its JSON form in the record file and in
`index.json`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["STATUSES", "FileKey", "FoundBox", "PageRecord", "Status"]

Status = Literal["read", "unsure", "nothing", "error"]
STATUSES: tuple[Status, ...] = get_args(Status)
"""read: every value read confidently; unsure: some value below the text-confidence threshold or empty;
nothing: no box of a read class found; error: the photo could not be decoded or predicted."""

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FileKey:
    """Which version of a photo a record is about: `file` its path relative to the photo folder (POSIX
    separators), `size` in bytes and `mtime_ns` its modification time (ns). A photo whose size or
    modification time changed is a new photo."""

    file: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FoundBox:
    """One detection: `box` XYXY pixels in the photo as displayed (EXIF applied, clipped to it), `class_name`,
    detection `score` in [0, 1]; for a box of a read class `text` (the recogniser's string, "" when nothing
    legible) and `text_score` in [0, 1], and `value` = `normalize_text(text)` (what the index lists and what
    folders are named by); all three None for a box that is not read."""

    box: Box
    label: int
    class_name: str
    score: float
    text: str | None = None
    text_score: float | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if len(self.box) != 4 or not all(math.isfinite(v) for v in self.box):
            raise ValueError(f"FoundBox.box: expected 4 finite XYXY pixel coordinates, got {self.box!r}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"FoundBox.score: expected a number in [0, 1], got {self.score!r}")
        if (self.text is None) != (self.text_score is None) or (self.text is None) != (self.value is None):
            raise ValueError("FoundBox: text, text_score and value are given together or not at all")
        if self.text_score is not None and not 0.0 <= self.text_score <= 1.0:
            raise ValueError(f"FoundBox.text_score: expected a number in [0, 1], got {self.text_score!r}")

    @property
    def read(self) -> bool:
        """Whether this box was read (it is of a read class)."""
        return self.text is not None

    def confident(self, min_score: float) -> bool:
        """A read box whose value is not empty and whose text score reaches `min_score`."""
        return bool(self.value) and self.text_score is not None and self.text_score >= min_score

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "class": self.class_name,
            "label": self.label,
            "score": round(self.score, 5),
            "box": [round(v, 2) for v in self.box],
        }
        if self.text is not None and self.text_score is not None:
            d.update(value=self.value, text=self.text, text_score=round(self.text_score, 5))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FoundBox:
        text = d.get("text")
        return cls(
            box=tuple(float(v) for v in d["box"]),  # type: ignore[arg-type]
            label=int(d["label"]),
            class_name=str(d["class"]),
            score=float(d["score"]),
            text=None if text is None else str(text),
            text_score=None if text is None else float(d["text_score"]),
            value=None if text is None else str(d["value"]),
        )


@dataclass(frozen=True)
class PageRecord:
    """The index entry of one photo version (`key`).

    `status`: one of `STATUSES`. `values`: the boxes of read classes in reading order (lines top to bottom,
    each line left to right in the page turned upright by `skew_degrees`). `others`: the remaining boxes
    (classes that are not read), in score order, kept for the review pre-annotations. `image_size`:
    (height, width) of the photo as displayed, None for an error. `error`: why, for an error. `settings`:
    a fingerprint of the model and settings that made the record (a record of other settings is redone).
    """

    key: FileKey
    status: Status
    values: tuple[FoundBox, ...] = ()
    others: tuple[FoundBox, ...] = ()
    image_size: tuple[int, int] | None = None
    skew_degrees: float = 0.0
    error: str | None = None
    settings: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"PageRecord {self.key.file!r}: status {self.status!r} is not one of {STATUSES}")
        if (self.status == "error") != (self.error is not None):
            raise ValueError(f"PageRecord {self.key.file!r}: an error message goes with status 'error' only")
        if any(not b.read for b in self.values) or any(b.read for b in self.others):
            raise ValueError(f"PageRecord {self.key.file!r}: values hold the read boxes, others the rest")

    @property
    def file(self) -> str:
        return self.key.file

    @property
    def value_strings(self) -> list[str]:
        """The values read, in reading order (normalised; "" for a box where nothing legible was read)."""
        return [b.value or "" for b in self.values]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: file, size, mtime_ns, status, values (strings), reads (one dict per value box), others,
        width, height, skew_degrees, error, settings."""
        height, width = self.image_size if self.image_size is not None else (None, None)
        return {
            "file": self.key.file,
            "size": self.key.size,
            "mtime_ns": self.key.mtime_ns,
            "status": self.status,
            "values": self.value_strings,
            "reads": [b.to_dict() for b in self.values],
            "others": [b.to_dict() for b in self.others],
            "width": width,
            "height": height,
            "skew_degrees": round(self.skew_degrees, 2),
            "error": self.error,
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PageRecord:
        """Inverse of `to_dict`; KeyError / ValueError / TypeError for a malformed dict."""
        width, height = d.get("width"), d.get("height")
        return cls(
            key=FileKey(str(d["file"]), int(d["size"]), int(d["mtime_ns"])),
            status=d["status"],
            values=tuple(FoundBox.from_dict(b) for b in d.get("reads", [])),
            others=tuple(FoundBox.from_dict(b) for b in d.get("others", [])),
            image_size=None if width is None or height is None else (int(height), int(width)),
            skew_degrees=float(d.get("skew_degrees", 0.0)),
            error=None if d.get("error") is None else str(d["error"]),
            settings=str(d.get("settings", "")),
        )
