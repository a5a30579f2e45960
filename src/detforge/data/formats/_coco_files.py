"""File-level helpers of the COCO format: finding annotation files, naming subsets, resolving and
copying images. `output_name` and `copy_image` are also used by the YOLO writer."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

from detforge.errors import DatasetError
from detforge.progress import tick
from detforge.structures import ImageRecord, Location, Problem

__all__ = [
    "ROBOFLOW_FILE",
    "coco_root",
    "copy_image",
    "find_coco_files",
    "output_name",
    "resolve_image",
    "roboflow_files",
    "subset_from_name",
]

_NO_SUBSET_STEMS = ("instances", "instances_default")
ROBOFLOW_FILE = "_annotations.coco.json"
"""Roboflow's COCO export: `<top>/<subset>/_annotations.coco.json` with the subset's images beside it."""
_SUBSET_ALIASES = {"valid": "val"}  # Roboflow names its validation folder `valid`


def roboflow_files(folder: Path) -> list[Path]:
    """The `<subset>/_annotations.coco.json` files of a Roboflow COCO export's top `folder` (sorted)."""
    return sorted(f for f in folder.glob(f"*/{ROBOFLOW_FILE}") if f.is_file())


def subset_from_name(json_path: Path) -> str | None:
    """Subset named by a COCO file name: `instances_<s>.json` or `<s>.json` -> `<s>`;
    `instances.json` and CVAT's `instances_default.json` -> None."""
    if json_path.name == ROBOFLOW_FILE:  # Roboflow: the subset is the folder (`valid` -> `val`)
        folder = json_path.resolve().parent.name
        return _SUBSET_ALIASES.get(folder, folder) if folder not in ("", ".") else None
    stem = json_path.stem
    if stem in _NO_SUBSET_STEMS:
        return None
    if stem.startswith("instances_"):
        return stem[len("instances_") :]
    return stem


def coco_root(json_path: Path) -> Path:
    """The dataset root of a COCO file: its folder, or that folder's parent when it is `annotations/`."""
    folder = json_path.parent
    return folder.parent if folder.name == "annotations" else folder


def find_coco_files(path: Path) -> tuple[list[Path], list[Problem]]:
    """The COCO json files of `path` (a .json file, or a folder with `annotations/*.json` or `*.json`, or
    Roboflow's `<subset>/_annotations.coco.json` files).

    In a folder holding `instances*.json` files, other json files (captions, keypoints, ...) are skipped
    with an info Problem. DatasetError when nothing is found.
    """
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    files: list[Path] = []
    for folder in (path / "annotations", path):
        if folder.is_dir():
            files = sorted(f for f in folder.glob("*.json") if f.is_file() and not f.name.startswith("."))
            if files:
                break
    files = files or roboflow_files(path)
    if not files:
        raise DatasetError(
            f"{path}: no COCO annotation file found; looked for annotations/*.json, *.json and "
            f"<subset>/{ROBOFLOW_FILE} (Roboflow)"
        )
    instances = [f for f in files if f.stem.startswith("instances")]
    problems: list[Problem] = []
    if instances:
        for skipped in sorted(set(files) - set(instances)):
            problems.append(
                Problem(
                    "info",
                    "coco.file_skipped",
                    f"{skipped.name} is not an instances_*.json file; only the instances files were read",
                    Location(str(skipped)),
                )
            )
        files = instances
    return files, problems


def resolve_image(root: Path, json_dir: Path, subset: str | None, file_name: str) -> Path:
    """Where `file_name` lives: the first existing of `<root>/images/<subset>/<f>`, `<root>/images/<f>`,
    `<root>/<subset>/<f>`, `<root>/<f>`, `<json dir>/<f>`; else the first candidate."""
    rel = Path(file_name)
    candidates: list[Path] = []
    if subset:
        candidates.append(root / "images" / subset / rel)
    candidates.append(root / "images" / rel)
    if subset:
        candidates.append(root / subset / rel)
    candidates += [root / rel, json_dir / rel]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def output_name(image: ImageRecord, root: Path) -> str:
    """A relative posix file name for writing `image` under an images folder.

    `file_name` when it is relative and stays inside its folder; else the image's path relative to the
    dataset `root`; else its base name.
    """
    name = image.file_name.replace("\\", "/")
    posix = PurePosixPath(name)
    if name and not posix.is_absolute() and not PureWindowsPath(name).drive and ".." not in posix.parts:
        return posix.as_posix()
    try:
        return image.path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return image.path.name


def copy_image(src: Path, dst: Path) -> None:
    """Copy `src` to `dst` with its metadata; skip when `dst` is the same file or has the same bytes.

    DatasetError when `src` is missing or `dst` is a different existing file (never overwritten).
    """
    if dst.exists():
        if src.exists() and (os.path.samefile(src, dst) or filecmp.cmp(src, dst, shallow=False)):
            return
        raise DatasetError(
            f"{dst}: a different file already exists there; refusing to overwrite it with {src} "
            "(write to an empty folder, or two images share this output name)"
        )
    if not src.is_file():
        raise DatasetError(f"{src}: image not found, cannot copy it to {dst} (write with copy_images=False to skip)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    tick("copy")
