"""The images of a batch job, listed once in a stable order: a folder (recursively), a glob, one image
file, a text file of paths (one a line), or a list of these. A path that does not exist stays in the
listing and is reported as a failed image when the job reaches it; it never stops the job."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from detforge.errors import ConfigError
from detforge.inference.sources import ImageSource, SourceLike, iter_sources

__all__ = ["PATH_LIST_SUFFIXES", "list_images", "listing_digest"]

PATH_LIST_SUFFIXES = (".txt", ".lst")
"""A source file with one of these suffixes is a list of image paths, one a line (blank lines and lines
starting with # are skipped); relative paths are taken from the list file's folder."""


def _read_path_list(path: Path) -> list[ImageSource]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the list of image paths ({exc})") from None
    found = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        found.append(ImageSource(entry, path=file))
    return found


def list_images(source: SourceLike | Sequence[SourceLike]) -> list[ImageSource]:
    """The job's images in order: `iter_sources`' expansion, except that a `.txt` / `.lst` file is read as
    a list of image paths (named as written in it). ConfigError for an unreadable list file."""
    if not isinstance(source, list | tuple):
        if _is_path_list(source):
            return _read_path_list(Path(source))  # type: ignore[arg-type]
        return list(iter_sources(source))
    found: list[ImageSource] = []
    others: list[SourceLike] = []  # expanded together, so in-memory images are numbered across the list
    for item in source:
        if _is_path_list(item):
            found.extend(iter_sources(others) if others else [])
            others = []
            found.extend(_read_path_list(Path(item)))  # type: ignore[arg-type]
        else:
            others.append(item)
    found.extend(iter_sources(others) if others else [])
    return found


def _is_path_list(item: object) -> bool:
    return isinstance(item, str | Path) and Path(item).suffix.lower() in PATH_LIST_SUFFIXES and Path(item).is_file()


def listing_digest(images: Sequence[ImageSource]) -> str:
    """An id of the listing: every image's name and path in order (and the content of in-memory images)."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(f"{image.name}\0{image.path}\0".encode())
        if image.data is not None:
            digest.update(hashlib.sha256(image.data).digest())
        elif image.array is not None:
            digest.update(hashlib.sha256(image.array.tobytes()).digest())
        elif image.image is not None:
            digest.update(hashlib.sha256(image.image.tobytes()).digest())
    return digest.hexdigest()
