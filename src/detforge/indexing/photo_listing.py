"""The photos an index run covers: a folder (recursively), a glob pattern, or a text file of paths (one a
line), each photo named by its path relative to one base folder (the names its records, index rows and
`--sort-into` copies use)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from detforge.batch.listing import PATH_LIST_SUFFIXES, list_images
from detforge.errors import ConfigError
from detforge.indexing.records import FileKey
from detforge.inference.sources import IMAGE_EXTENSIONS, ImageSource

__all__ = ["PhotoListing", "is_folder_source", "list_photos"]

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class PhotoListing:
    """`photos` (source, key) in index order; `base` the folder every key's `file` is relative to (the
    photo folder itself, or the deepest folder holding every listed file of a glob or path list)."""

    base: Path
    photos: tuple[tuple[ImageSource, FileKey], ...]


def is_folder_source(source: str | Path) -> bool:
    """Whether `source` is a folder of photos (not a glob pattern or a path list)."""
    return Path(source).is_dir()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _key(path: Path, relative: str) -> FileKey:
    try:
        stat = path.stat()
    except OSError:  # a listed file that is missing: recorded as an error, retried by the next run
        return FileKey(relative, -1, -1)
    return FileKey(relative, stat.st_size, stat.st_mtime_ns)


def _folder(photos: Path, excluded: list[Path]) -> PhotoListing:
    found = []
    for path in sorted(photos.rglob("*"), key=lambda p: p.relative_to(photos).as_posix()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if any(_inside(path.resolve(), e) for e in excluded):
            continue
        relative = path.relative_to(photos).as_posix()
        found.append((ImageSource(relative, path=path), _key(path, relative)))
    if not found:
        raise ConfigError(
            f"{photos}: no photos found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files in it and its "
            "sub-folders)"
        )
    return PhotoListing(photos, tuple(found))


def list_photos(source: str | Path, *, exclude: Iterable[Path] = ()) -> PhotoListing:
    """The photos of `source`, with their keys, in a stable order, leaving out files under any of `exclude`
    (the run's own output folders).

    A folder: its image files (by extension, recursively), sorted by relative path. A glob pattern (`*`,
    `?`, `[`; `**` recursive): its matching image files, sorted. A `.txt` / `.lst` file: its lines, in
    order (blank lines and `#` comments skipped; relative paths from the list file's folder); a listed
    file that is missing stays in the listing and is recorded as an error naming it. ConfigError when the
    source is none of these, or lists no photo."""
    excluded = [Path(p).resolve() for p in exclude]
    text = str(source)
    path = Path(source)
    if path.is_dir():
        return _folder(path, excluded)
    is_list = path.is_file() and path.suffix.lower() in PATH_LIST_SUFFIXES
    if not is_list and not _GLOB_CHARS & set(text):
        raise ConfigError(
            f"{source}: not a folder, a glob pattern or a list of paths ({', '.join(PATH_LIST_SUFFIXES)} file); "
            "expected the photos to index"
        )
    images = [im for im in list_images(source) if im.path is not None]
    files = [Path(os.path.abspath(im.path)) for im in images]  # type: ignore[arg-type]
    kept = [(im, f) for im, f in zip(images, files, strict=True) if not any(_inside(f.resolve(), e) for e in excluded)]
    if not kept:
        what = "lists no image path" if is_list else "matches no image file"
        raise ConfigError(f"{source}: {what}; expected the photos to index")
    base = Path(os.path.commonpath([f.parent for _, f in kept]))
    found = []
    for _, file in kept:
        relative = file.relative_to(base).as_posix()
        found.append((ImageSource(relative, path=file), _key(file, relative)))
    return PhotoListing(base, tuple(found))
