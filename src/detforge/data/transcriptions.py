"""Which attribute of a box holds its transcription: chosen here, in one place, for every format.

Readers keep every attribute of a box as read (`Annotation.attributes`) and tell which attribute
names their format marks as free text (`Dataset.text_fields`: a CVAT attribute declared with
`input_type` text, a Label Studio per-region TextArea's `from_name`, LabelMe's `description`).
`apply_text_attribute` then sets `Annotation.text` from one attribute:

- named (`text_attribute="number"`, CLI `--text-attribute number`): that attribute; a name no box
  has is a `DatasetError` naming the attribute names the boxes do have;
- auto-detected: the candidates are the format's free-text fields plus attributes named `text` or
  `transcription` (any case) that at least one box has. One candidate is used; several are not
  guessed between: a warning Problem (`text.ambiguous`) names them and the flag, and no text is set.

Values: surrounding whitespace is trimmed; an empty value (how every tool writes a field nobody
filled in) means no text (None); a value of only whitespace is kept as is so `data check` can warn.

Writers write `Annotation.text` back as the attribute `text` (`text_write_name`,
`text_attribute_pairs`), dropping the source attribute so that a converted dataset has one
transcription attribute; when another attribute is already named `text`, the source name is kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from detforge.data.dataset import Dataset
from detforge.errors import DatasetError
from detforge.structures import Annotation, Location, Problem

__all__ = [
    "KNOWN_TEXT_NAMES",
    "apply_text_attribute",
    "attribute_names",
    "clean_text",
    "count_texts",
    "text_attribute_pairs",
    "text_candidates",
    "text_write_name",
]

KNOWN_TEXT_NAMES = ("text", "transcription")
"""Attribute names (compared case-insensitively) taken as a transcription in any format."""


def clean_text(value: str | None) -> str | None:
    """A raw attribute value as a transcription: trimmed; "" -> None; only whitespace kept verbatim."""
    if value is None or value == "":
        return None
    return value.strip() or value


def attribute_names(dataset: Dataset) -> Counter[str]:
    """How many boxes have each attribute name."""
    return Counter(name for ann in dataset.annotations for name in {k for k, _ in ann.attributes})


def text_candidates(dataset: Dataset) -> tuple[str, ...]:
    """Attribute names that may hold the transcription, sorted: format free-text fields and known names present."""
    present = attribute_names(dataset)
    declared = {name for name in dataset.text_fields if name in present}
    known = {name for name in present if name.lower() in KNOWN_TEXT_NAMES}
    return tuple(sorted(declared | known))


def _with_text(ann: Annotation, name: str, previous: str | None) -> Annotation:
    raw = dict(ann.attributes)
    if name in raw:
        return replace(ann, text=clean_text(raw[name]))
    if previous is not None and ann.text is not None:  # its text came from the attribute chosen before
        return replace(ann, text=None)
    return ann


def apply_text_attribute(dataset: Dataset, text_attribute: str | None = None) -> Dataset:
    """`dataset` with each box's `text` read from `text_attribute`, or from the one auto-detected candidate.

    Returns the dataset with `text_attribute` recorded (None when none was chosen). Boxes without
    the attribute keep their `text` (None as read, or set by the caller) unless the dataset's text
    came from another attribute chosen before, in which case it is cleared. Raises DatasetError when `text_attribute` is
    given and no box has it; with several candidates and no choice, adds a `text.ambiguous` warning.
    """
    if text_attribute is not None:
        if not isinstance(text_attribute, str) or not text_attribute:
            raise DatasetError(f"text_attribute must be a non-empty attribute name, got {text_attribute!r}")
        present = attribute_names(dataset)
        if text_attribute not in present:
            known = ", ".join(repr(n) for n in sorted(present)) or "none"
            raise DatasetError(
                f"{dataset.root}: no box has an attribute {text_attribute!r} to read transcriptions from; "
                f"attribute names in this dataset: {known}"
            )
        chosen = text_attribute
    else:
        candidates = text_candidates(dataset)
        if len(candidates) > 1:
            counts = attribute_names(dataset)
            listed = ", ".join(f"{n!r} ({counts[n]} boxes)" for n in candidates)
            problem = Problem(
                "warning",
                "text.ambiguous",
                f"several attributes may hold the transcription: {listed}; none is used. "
                f"Choose one with --text-attribute NAME (Python: text_attribute=NAME)",
                Location(str(dataset.root)),
            )
            return replace(dataset, problems=(*dataset.problems, problem))
        if not candidates:
            return dataset
        chosen = candidates[0]
    annotations = tuple(_with_text(ann, chosen, dataset.text_attribute) for ann in dataset.annotations)
    return replace(dataset, annotations=annotations, text_attribute=chosen)


def text_write_name(dataset: Dataset, default: str = "text") -> str:
    """The attribute name a writer gives the transcription: `default`, unless another attribute of that name exists.

    When the transcription was read from another attribute and some box also has an attribute named
    `default`, writing the text under `default` would overwrite it; the source name is kept instead
    (the written file then has both, as the input did, and reading it back asks which one).
    """
    source = dataset.text_attribute
    if source is None or source == default:
        return default
    if any(k == default for ann in dataset.annotations for k, _ in ann.attributes):
        return source
    return default


def text_attribute_pairs(ann: Annotation, text_attribute: str | None, name: str = "text") -> dict[str, str]:
    """The box's attributes to write, with its transcription under `name` and the source attribute dropped.

    The value written is `ann.text`; a box whose source attribute was read as no text ("") keeps
    that raw value under `name`, so a round trip writes what it read. Other attributes are kept.
    """
    attrs = dict(ann.attributes)
    source = attrs.pop(text_attribute, None) if text_attribute is not None else None
    value = ann.text if ann.text is not None else source
    if value is not None:
        attrs[name] = value
    return attrs


def count_texts(dataset: Dataset) -> int:
    """How many boxes carry a transcription."""
    return sum(1 for ann in dataset.annotations if ann.text is not None)
