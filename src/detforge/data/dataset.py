"""The one in-memory dataset every format reads into and writes from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from detforge.structures import Annotation, Categories, ImageRecord, Problem

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """Images, annotations and categories of one dataset, possibly spanning several subsets.

    Invariants a reader guarantees: image ids and annotation ids are unique; every annotation's
    `image_id` is an image here and its `category_id` is in `categories`. Items a reader could not
    keep (malformed lines, unknown ids, ...) are left out and described in `problems`, never
    dropped silently. `root` is the folder the dataset was read from; `format` the reader's name.

    `text_attribute` names the attribute each box's transcription (`Annotation.text`) was read from,
    or None when none was chosen (see `detforge.data.transcriptions`). `text_fields` are the
    attribute names the source format itself marks as free text (a CVAT text attribute, a Label
    Studio per-region TextArea, LabelMe's description): the candidates for auto-detection.

    A Dataset is a record: the verbs that work on one are the API's (`detforge.check(ds)`,
    `detforge.stats(ds)`, `detforge.show(ds, out=...)`, `detforge.split(ds, out=...)`,
    `detforge.convert(ds, out, to=...)`), which take a Dataset wherever they take a path. So the
    stage modules that work on a Dataset import it, and it imports none of them.
    """

    images: tuple[ImageRecord, ...]
    annotations: tuple[Annotation, ...]
    categories: Categories
    root: Path
    format: str
    problems: tuple[Problem, ...] = field(default=(), compare=False)
    text_attribute: str | None = field(default=None, compare=False)
    text_fields: tuple[str, ...] = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def _by_image(self) -> dict[int, tuple[Annotation, ...]]:
        grouped: dict[int, list[Annotation]] = defaultdict(list)
        for ann in self.annotations:
            grouped[ann.image_id].append(ann)
        return {k: tuple(v) for k, v in grouped.items()}

    @property
    def has_text(self) -> bool:
        """True when at least one annotation carries a transcription."""
        return any(a.text is not None for a in self.annotations)

    def annotations_of(self, image_id: int) -> tuple[Annotation, ...]:
        """Annotations of one image (empty tuple for an image with no objects)."""
        return self._by_image.get(image_id, ())

    @property
    def subsets(self) -> tuple[str, ...]:
        """Subset names present, in a stable order (train, val, test first, then sorted)."""
        present = {im.subset for im in self.images if im.subset is not None}
        order = [s for s in ("train", "val", "test") if s in present]
        return tuple(order + sorted(present - set(order)))

    def subset(self, name: str) -> Dataset:
        """The images of one subset and their annotations; KeyError naming the known subsets."""
        if name not in self.subsets:
            raise KeyError(f"no subset {name!r} in dataset at {self.root}; subsets: {list(self.subsets)}")
        return self.select(im.id for im in self.images if im.subset == name)

    def select(self, image_ids) -> Dataset:  # type: ignore[no-untyped-def]
        """A dataset with only the given image ids (and their annotations), same categories."""
        keep = set(image_ids)
        return replace(
            self,
            images=tuple(im for im in self.images if im.id in keep),
            annotations=tuple(a for a in self.annotations if a.image_id in keep),
        )

    def with_subset(self, name: str | None) -> Dataset:
        """The same dataset with every image's subset set to `name`."""
        return replace(self, images=tuple(replace(im, subset=name) for im in self.images))
