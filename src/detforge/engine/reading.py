"""Reading after training: the model's ReadSettings from the resolved `read` config, the reads of the
validation boxes that have transcriptions, and the text-confidence threshold calibrated on them.

The validation pass reads ground-truth boxes (not detections), so it measures the recogniser alone and
costs one `reader.read` call per image with every labelled box of a read class in it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from detforge.config.auto_read import transcriptions_by_class
from detforge.config.schema import ReadConfig
from detforge.data.dataset import Dataset
from detforge.data.images import load_image
from detforge.errors import DetforgeError, InvalidImage
from detforge.evaluation.read_calibration import ReadCalibration, calibrate_read_threshold
from detforge.reading import Reader, ReadSettings, TextRead, load_lexicon
from detforge.structures.text import normalize_text

__all__ = [
    "GroundTruthReads",
    "ReadOutcome",
    "ReaderBroken",
    "calibrate_reading",
    "count_transcriptions",
    "read_ground_truth",
    "read_settings_from_config",
    "store_read_settings",
]

log = logging.getLogger("detforge.train")


class ReaderBroken(DetforgeError, RuntimeError):
    """A reader returned the wrong number of results or something that is not a TextRead."""


def read_settings_from_config(read: ReadConfig) -> ReadSettings | None:
    """The ReadSettings a model stores for the resolved `read` section (auto choices already made by
    `auto_config`), or None when reading is off. The lexicon file is loaded here (its values are stored
    inline); `min_score: auto` becomes the default threshold, uncalibrated, until `calibrate_reading`.
    ConfigError naming the file and line for a lexicon that cannot be read."""
    if read.enabled is not True:
        return None
    lexicon = load_lexicon(read.lexicon) if read.lexicon is not None else None
    allow = None if read.allow == "auto" else read.allow
    settings = ReadSettings(
        enabled=True,
        classes=read.classes,
        allow=allow,
        pattern=None if read.pattern == "auto" else read.pattern,
        lexicon=lexicon,
        padding=float(read.padding),
        recognizer=read.recognizer,
    )
    if read.min_score != "auto":
        settings = replace(settings, min_score=float(read.min_score))
    if lexicon is not None and allow is not None:
        outside = [v for v in lexicon if set(normalize_text(v)) - set(allow)]
        if outside:
            log.warning(
                "read.lexicon: %d of %d values use characters outside read.allow %r (e.g. %r): they cannot be read",
                len(outside),
                len(lexicon),
                allow,
                outside[0],
            )
    return settings


def count_transcriptions(dataset: Dataset, settings: ReadSettings) -> int:
    """Boxes of `dataset` whose class `settings` reads and whose transcription is not empty."""
    return sum(len(v) for name, v in transcriptions_by_class(dataset).items() if settings.reads(name))


@dataclass(frozen=True)
class GroundTruthReads:
    """What a reader read in labelled boxes: per box the normalised label (`truths`), the normalised value
    read (`values`) and its confidence (`scores`, float64 [N] in [0, 1]); `skipped` the image files that could
    not be decoded (their boxes are left out)."""

    truths: tuple[str, ...]
    values: tuple[str, ...]
    scores: np.ndarray
    skipped: tuple[str, ...] = ()

    @property
    def correct(self) -> np.ndarray:
        """bool [N]: the value read equals the label (both normalised)."""
        return np.array([t == v for t, v in zip(self.truths, self.values, strict=True)], dtype=bool)

    def __len__(self) -> int:
        return len(self.truths)


def read_ground_truth(reader: Reader, dataset: Dataset, settings: ReadSettings) -> GroundTruthReads:
    """Read every non-crowd box of `dataset` that has a transcription and whose class `settings` reads, one
    `reader.read` call per image (its boxes batched, XYXY float32 pixels of the displayed image).

    An image that cannot be decoded is skipped with a warning (listed in `skipped`); ReaderBroken when the
    reader returns the wrong number of results or something that is not a TextRead."""
    names = {c.id: c.name for c in dataset.categories}
    truths: list[str] = []
    values: list[str] = []
    scores: list[float] = []
    skipped: list[str] = []
    for image in dataset.images:
        labelled = [
            (ann.bbox, normalize_text(ann.text))
            for ann in dataset.annotations_of(image.id)
            if ann.text is not None and not ann.iscrowd and settings.reads(names.get(ann.category_id, ""))
        ]
        labelled = [(box, text) for box, text in labelled if text]
        if not labelled:
            continue
        try:
            pixels = np.asarray(load_image(image.path), dtype=np.uint8)
        except InvalidImage as exc:
            log.warning("reading calibration: skipped %s (%s)", image.file_name, exc)
            skipped.append(image.file_name)
            continue
        boxes = np.array([box for box, _ in labelled], dtype=np.float32).reshape(-1, 4)
        reads = _checked(reader, reader.read(pixels, boxes), len(labelled))
        for (_, truth), result in zip(labelled, reads, strict=True):
            truths.append(truth)
            values.append(normalize_text(result.text))
            scores.append(float(result.score))
    return GroundTruthReads(tuple(truths), tuple(values), np.asarray(scores, dtype=np.float64), tuple(skipped))


def _checked(reader: Reader, reads: Sequence[Any], expected: int) -> list[TextRead]:
    out = list(reads)
    if len(out) != expected or not all(isinstance(r, TextRead) for r in out):
        kinds = ", ".join(sorted({type(r).__name__ for r in out}))
        raise ReaderBroken(
            f"{type(reader).__name__}.read returned {len(out)} results ({kinds}) for {expected} boxes; "
            "expected one TextRead per box"
        )
    return out


@dataclass(frozen=True)
class ReadOutcome:
    """Reading as a training run set it up: the `settings` stored in model.pt, the number of training
    transcriptions they were chosen from, the reads of the validation boxes (`calibration`: accuracy,
    and the threshold chosen from them; None when nothing was measured) and `note`, why not, or ""."""

    settings: ReadSettings
    train_texts: int
    calibration: ReadCalibration | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "train_texts": self.train_texts,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReadOutcome:
        calibration = data.get("calibration")
        return cls(
            settings=ReadSettings.from_dict(data["settings"]),
            train_texts=int(data["train_texts"]),
            calibration=None if calibration is None else ReadCalibration(**calibration),
            note=str(data.get("note", "")),
        )

    def summary(self) -> str:
        """One line for the training summary: accuracy on the validation boxes and the threshold."""
        s = self.settings
        threshold = f"text threshold {s.min_score:.3f} ({'calibrated' if s.min_score_calibrated else 'not calibrated'})"
        c = self.calibration
        if c is None:
            return f"reading: {threshold}" + (f"; {self.note}" if self.note else "")
        right = round(c.accuracy * c.n)
        line = f"read accuracy on {c.n} validation boxes {c.accuracy:.3f} ({right}/{c.n} exact); {threshold}"
        if s.min_score_calibrated:
            line += f": precision {c.precision:.3f} on {c.coverage:.0%} of reads (target {c.target_precision:g})"
        return line


def calibrate_reading(
    settings: ReadSettings, val: Dataset, reader: Reader, *, target_precision: float, calibrate_min_score: bool
) -> tuple[ReadSettings, ReadCalibration | None, str]:
    """Read the validation boxes with transcriptions and, when `calibrate_min_score`, set `min_score` to the
    lowest threshold whose trusted reads reach `target_precision` (`min_score_calibrated=True`).

    Returns (settings, the calibration measured or None, a note saying why nothing was calibrated or that
    the target was missed, else ""). With no validation transcription the settings come back unchanged."""
    reads = read_ground_truth(reader, val, settings)
    if not len(reads):
        return settings, None, "no validation box of a read class has a transcription: threshold not calibrated"
    calibration = calibrate_read_threshold(reads.scores, reads.correct, target_precision)
    if not calibrate_min_score:
        return settings, calibration, ""
    note = ""
    if not calibration.reached_target:
        note = (
            f"no text threshold reaches precision {target_precision:g} on the validation reads; chose the best, "
            f"{calibration.threshold:.3f} (precision {calibration.precision:.3f})"
        )
    return replace(settings, min_score=calibration.threshold, min_score_calibrated=True), calibration, note


def store_read_settings(model_path: Path, settings: ReadSettings) -> None:
    """Rewrite the artifact `model_path` (atomically) with `settings` as its `ModelSpec.read`."""
    from detforge.models.artifact import load_model, save_model

    detector, spec = load_model(model_path)
    save_model(model_path, detector, replace(spec, read=settings))
