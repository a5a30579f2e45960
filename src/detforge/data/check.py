"""Check a dataset before training: image files, boxes, classes, transcriptions, unlabelled images, leakage.

`check_dataset` never modifies the dataset or any file; it reads image headers, file tails and, for the
leakage check, small thumbnails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detforge.data.check_annotations import (
    box_problems,
    category_problems,
    instance_counts,
    normalized_box_problems,
    text_problems,
    unlabelled_image_problems,
)
from detforge.data.check_images import check_image
from detforge.data.dataset import Dataset
from detforge.data.dedup import near_duplicates
from detforge.data.quoting import image_label, image_location, quoted
from detforge.progress import LARGE_SET, track
from detforge.structures import Problem

__all__ = ["LEAKAGE_NEAR_DUPLICATE", "CheckReport", "check_dataset"]

LEAKAGE_NEAR_DUPLICATE = "leakage.near_duplicate"

_SEVERITIES = (("error", "Errors"), ("warning", "Warnings"), ("info", "Info"))


@dataclass(frozen=True)
class CheckReport:
    """What `check_dataset` found.

    `problems` holds the reader's problems first, then the checks' in a stable order. `ok` is True when
    there is no error (with `strict`, no warning either). `instances_per_class` maps every category
    name (zeros included, category order) to its number of annotations.
    """

    problems: tuple[Problem, ...]
    num_images: int
    num_annotations: int
    instances_per_class: dict[str, int] = field(default_factory=dict)
    strict: bool = False

    def __post_init__(self) -> None:
        if self.num_images < 0 or self.num_annotations < 0:
            raise ValueError(
                f"CheckReport: counts must be >= 0, got num_images={self.num_images}, "
                f"num_annotations={self.num_annotations}"
            )

    def _count(self, severity: str) -> int:
        return sum(1 for p in self.problems if p.severity == severity)

    @property
    def num_errors(self) -> int:
        return self._count("error")

    @property
    def num_warnings(self) -> int:
        return self._count("warning")

    @property
    def num_info(self) -> int:
        return self._count("info")

    @property
    def ok(self) -> bool:
        return self.num_errors == 0 and (not self.strict or self.num_warnings == 0)

    def codes(self) -> tuple[str, ...]:
        """The problem codes in report order (convenient for scripts and tests)."""
        return tuple(p.code for p in self.problems)

    def to_json(self) -> dict[str, object]:
        """Plain JSON-serialisable dict: ok, strict, the counts and every problem (`Problem.to_json`)."""
        return {
            "ok": self.ok,
            "strict": self.strict,
            "num_images": self.num_images,
            "num_annotations": self.num_annotations,
            "num_errors": self.num_errors,
            "num_warnings": self.num_warnings,
            "num_info": self.num_info,
            "instances_per_class": dict(self.instances_per_class),
            "problems": [p.to_json() for p in self.problems],
        }

    def format_text(self) -> str:
        """Human report: problems grouped by severity (errors first), one line each naming file:line and ids,
        then the instances per class and a summary line."""
        lines: list[str] = []
        for severity, title in _SEVERITIES:
            group = [p for p in self.problems if p.severity == severity]
            if not group:
                continue
            lines.append(f"{title} ({len(group)}):")
            lines.extend(f"  {_line(p)}" for p in group)
        if self.instances_per_class:
            counts = ", ".join(f"{name} {n}" for name, n in self.instances_per_class.items())
            lines.append(f"Instances per class: {counts}")
        verdict = "OK" if self.ok else "FAILED" + (" (strict: warnings count as errors)" if self.strict else "")
        lines.append(
            f"Summary: {self.num_images} images, {self.num_annotations} annotations, "
            f"{len(self.instances_per_class)} classes; {self.num_errors} errors, {self.num_warnings} warnings, "
            f"{self.num_info} info -> {verdict}"
        )
        return "\n".join(lines)


def _line(p: Problem) -> str:
    ids = []
    if p.image_id is not None:
        ids.append(f"image {p.image_id}")
    if p.annotation_id is not None:
        ids.append(f"annotation {p.annotation_id}")
    if quoted(p.location):  # the message names the item by the user's own ids; detforge's would mislead
        ids = []
    parts = [str(p.location)] if p.location else []
    if ids:
        parts.append(f"[{', '.join(ids)}]")
    where = " ".join(parts)
    return f"{where}: {p.message} ({p.code})" if where else f"{p.message} ({p.code})"


def _leakage(dataset: Dataset) -> list[Problem]:
    problems = []
    for pair in near_duplicates(dataset, across_subsets_only=True):
        a, b = pair.first, pair.second
        kind = "identical-looking" if pair.distance == 0 else f"near-duplicate (hash distance {pair.distance}/64)"
        problems.append(
            Problem(
                "warning",
                LEAKAGE_NEAR_DUPLICATE,
                f"{kind} images across subsets: {a.file_name} (subset {a.subset}, {image_label(a)}) and {b.file_name} "
                f"(subset {b.subset}, {image_label(b)}); evaluation on one measures memory of the other",
                image_location(a),
                a.id,
            )
        )
    return problems


def check_dataset(dataset: Dataset, *, strict: bool = False, images: bool = True, leakage: bool = True) -> CheckReport:
    """Check `dataset` and report every problem found, without changing anything.

    images: open each image's header and tail (missing, not an image, truncated, size vs declared size,
    EXIF rotation). Box checks use the file's displayed size when it is known, else the declared one.
    leakage: with more than one subset, warn about near-duplicate images in different subsets (decodes
    small thumbnails; slower). strict: also flag boxes that look normalised, and make warnings fail `ok`.
    """
    problems: list[Problem] = list(dataset.problems)
    sizes: dict[int, tuple[int, int]] = {}
    if images:
        for image in track(dataset.images, desc="check", min_total=LARGE_SET):
            result = check_image(image)
            problems.extend(result.problems)
            if result.header is not None:
                sizes[image.id] = (result.header.width, result.header.height)
    problems.extend(box_problems(dataset, sizes))
    if strict:
        problems.extend(normalized_box_problems(dataset, sizes))
    problems.extend(category_problems(dataset))
    problems.extend(text_problems(dataset))
    problems.extend(unlabelled_image_problems(dataset))
    if leakage and len(dataset.subsets) > 1:
        problems.extend(_leakage(dataset))
    return CheckReport(
        problems=tuple(problems),
        num_images=len(dataset.images),
        num_annotations=len(dataset.annotations),
        instances_per_class=instance_counts(dataset),
        strict=strict,
    )
