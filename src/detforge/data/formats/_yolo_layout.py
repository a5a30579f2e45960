"""Find the images, label files and class names of a YOLO dataset in any of its three layouts.

(1) Ultralytics `data.yaml`; (2) CVAT "YOLO 1.1" (`obj.data`, `obj.names`, `<subset>.txt`,
`obj_<subset>_data/`); (3) loose `images/<subset>/` + `labels/<subset>/` + `obj.names`/`classes.txt`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detforge.data.formats._yolo_config import names_from_file, names_from_yaml, read_obj_data, read_yaml
from detforge.errors import DatasetError
from detforge.structures import Categories, Location, Problem

__all__ = ["IMAGE_SUFFIXES", "SubsetFiles", "YoloLayout", "find_layout", "label_beside", "label_in_labels_dir"]

IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})
_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
_NAMES_FILES = ("obj.names", "classes.txt")
_YAML_KNOWN_KEYS = frozenset(
    {"path", "train", "val", "test", "names", "nc", "download", "yaml_file", "kpt_shape", "flip_idx", "channels"}
)
_OBJ_DATA_KEYS = frozenset({"classes", "names", "backup", "eval", "results"})


@dataclass(frozen=True)
class SubsetFiles:
    """The images of one subset (absolute or as given, sorted, unique) and the label file of each."""

    name: str | None
    images: tuple[Path, ...]
    labels: tuple[Path, ...]


@dataclass(frozen=True)
class YoloLayout:
    """A YOLO dataset located on disk: its root folder, categories (0-based ids) and subsets."""

    root: Path
    categories: Categories
    subsets: tuple[SubsetFiles, ...]
    problems: tuple[Problem, ...]


def label_in_labels_dir(image: Path) -> Path:
    """Ultralytics' rule: the last `images` folder component becomes `labels`, suffix `.txt`."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def label_beside(image: Path) -> Path:
    """CVAT's rule: the label file sits next to the image."""
    return image.with_suffix(".txt")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _list_folder(folder: Path, recursive: bool = True) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return [p for p in found if _is_image(p)]


def _first_existing(candidates: list[Path]) -> Path:
    return next((c for c in candidates if c.exists()), candidates[0])


def _read_list(list_file: Path, resolve: Callable[[str], Path]) -> list[Path]:
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{list_file}: cannot read this image list ({exc})") from None
    lines = (line.strip() for line in text.splitlines())
    return [resolve(line) for line in lines if line and not line.startswith("#")]


def _in_list_folder_or_root(list_folder: Path, root: Path) -> Callable[[str], Path]:
    """Resolve a line of an image list against the list's folder, else the dataset root."""

    def resolve(line: str) -> Path:
        return _first_existing([list_folder / line, root / line])

    return resolve


def _subset(
    name: str | None, images: list[Path], label_of: Callable[[Path], Path], problems: list[Problem], where: Location
) -> SubsetFiles:
    unique = sorted(set(images))
    if len(unique) < len(images):
        problems.append(
            Problem("warning", "yolo.duplicate_image", f"subset {name!r} lists {len(images) - len(unique)} image(s) "
                    "more than once; each was read once", where)
        )  # fmt: skip
    return SubsetFiles(name, tuple(unique), tuple(label_of(p) for p in unique))


def _subset_keys(data: dict[str, object], root: Path) -> list[str]:
    """train, val, test, then any other key whose value is a string naming an existing folder (e.g. a
    `valid: images/valid` written by detforge for a subset with another name)."""
    extra = [
        k for k, v in data.items()
        if isinstance(k, str) and k not in _YAML_KNOWN_KEYS and isinstance(v, str) and "\n" not in v
        and (root / v).is_dir()
    ]  # fmt: skip
    return ["train", "val", "test", *extra]


def _ultralytics(yaml_path: Path) -> YoloLayout:
    data = read_yaml(yaml_path)
    problems: list[Problem] = []
    where = Location(str(yaml_path))
    raw_root = data.get("path")
    if raw_root in (None, ""):
        root = yaml_path.parent
    elif not isinstance(raw_root, str):
        raise DatasetError(f"{yaml_path}: 'path' must be a folder path (a string), got {raw_root!r}")
    else:
        root = Path(raw_root).expanduser()
        if not root.is_absolute():
            root = Path(os.path.normpath(yaml_path.parent / root))
        elif not root.is_dir():
            problems.append(
                Problem(
                    "info", "yolo.path_fallback",
                    f"'path: {raw_root}' does not exist on this machine; paths were resolved against the yaml's "
                    f"folder {yaml_path.parent} instead",
                    where,
                )
            )  # fmt: skip
            root = yaml_path.parent
    categories = names_from_yaml(data, yaml_path, problems)
    subsets: list[SubsetFiles] = []
    for key in _subset_keys(data, root):
        value = data.get(key)
        if value in (None, "", []):
            continue
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, str) for e in entries):
            raise DatasetError(f"{yaml_path}: '{key}' must be a path or a list of paths (strings), got {value!r}")
        images: list[Path] = []
        for entry in entries:
            source = root / Path(entry).expanduser()
            if source.is_dir():
                images += _list_folder(source)
            elif source.is_file() and source.suffix.lower() == ".txt":
                images += _read_list(source, _in_list_folder_or_root(source.parent, root))
            else:
                problems.append(
                    Problem(
                        "error", "yolo.subset_missing",
                        f"'{key}: {entry}' resolves to {source}, which is neither a folder nor a .txt list of images; "
                        f"subset {key!r} left out",
                        where,
                    )
                )  # fmt: skip
        if images:
            subsets.append(_subset(key, images, label_in_labels_dir, problems, where))
    if not subsets:
        raise DatasetError(f"{yaml_path}: no images found for 'train', 'val' or 'test' (resolved against {root})")
    return YoloLayout(root, categories, tuple(subsets), tuple(problems))


def _cvat_path(root: Path, value: str) -> Path:
    """CVAT writes paths as `data/<name>`, where `data/` means the export folder."""
    candidates = [root / value]
    if value.startswith("data/"):
        candidates.insert(0, root / value[len("data/") :])
    return _first_existing(candidates)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def _looks_like_list(path: Path) -> bool:
    """True when the first non-empty line of `path` names an image file."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            first = next((line.strip() for line in f if line.strip()), "")
    except OSError:
        return False
    return Path(first).suffix.lower() in IMAGE_SUFFIXES


def _cvat_unread(root: Path, obj_data: Path, lists_read: set[str], images_read: set[str]) -> list[Problem]:
    """What a CVAT YOLO 1.1 export holds but `obj.data` does not lead to: images of `obj_<subset>_data/`
    folders that no read list or folder contains, and `<subset>.txt` image lists it does not name."""
    where = Location(str(obj_data))
    problems: list[Problem] = []
    for folder in sorted(f for f in root.glob("obj_*_data") if f.is_dir()):
        subset = folder.name[len("obj_") : -len("_data")]
        images = sorted(_list_folder(folder))
        unread = [im for im in images if _key(im) not in images_read]
        if not unread:
            continue
        names = ", ".join(im.name for im in unread[:5]) + (", ..." if len(unread) > 5 else "")
        if len(unread) == len(images):
            why = f"obj.data names no subset {subset!r} (add the line '{subset} = data/{subset}.txt' to read them)"
        else:
            why = "the subset's image list does not contain them"
        problems.append(
            Problem("warning", "yolo.images_not_read", f"{folder.name}/ holds {len(unread)} image(s) that were not "
                    f"read ({names}): {why}", where)
        )  # fmt: skip
    for list_file in sorted(root.glob("*.txt")):
        if _key(list_file) in lists_read or not list_file.is_file():
            continue
        if (root / f"obj_{list_file.stem}_data").is_dir() or _looks_like_list(list_file):
            problems.append(
                Problem("warning", "yolo.list_not_read", f"{list_file.name} is an image list that obj.data does not "
                        f"name; not read (add the line '{list_file.stem} = data/{list_file.name}' to read it)", where)
            )  # fmt: skip
    return problems


def _cvat(obj_data: Path) -> YoloLayout:
    root = obj_data.parent
    entries = read_obj_data(obj_data)
    names_value, _ = entries.get("names", ("data/obj.names", 0))
    categories = names_from_file(_cvat_path(root, names_value))
    if "classes" in entries:
        value, line = entries["classes"]
        if not value.isdigit() or int(value) != len(categories):
            raise DatasetError(
                f"{obj_data}:{line}: 'classes = {value}' but {names_value} has {len(categories)} names; they must match"
            )
    problems: list[Problem] = []
    subsets: list[SubsetFiles] = []
    lists_read: set[str] = set()
    for key, (value, line) in entries.items():
        if key in _OBJ_DATA_KEYS:
            continue
        list_file = _cvat_path(root, value)
        folder = root / f"obj_{key}_data"
        if list_file.is_file():
            images = _read_list(list_file, lambda entry: _cvat_path(root, entry))
            lists_read.add(_key(list_file))
        elif folder.is_dir():
            images = _list_folder(folder)
            problems.append(
                Problem("info", "yolo.list_missing", f"{value} not found; listed the images of {folder} instead",
                        Location(str(obj_data), line))
            )  # fmt: skip
        else:
            problems.append(
                Problem("error", "yolo.subset_missing", f"{key} = {value}: neither {list_file} nor {folder} exists; "
                        f"subset {key!r} left out", Location(str(obj_data), line))
            )  # fmt: skip
            continue
        subsets.append(_subset(key, images, label_beside, problems, Location(str(obj_data), line)))
    if not subsets:
        raise DatasetError(f"{obj_data}: no subset with images (expected lines like 'train = data/train.txt')")
    images_read = {_key(im) for sub in subsets for im in sub.images}
    problems += _cvat_unread(root, obj_data, lists_read, images_read)
    return YoloLayout(root, categories, tuple(subsets), tuple(problems))


def _loose(folder: Path) -> YoloLayout:
    names_file = next((folder / n for n in _NAMES_FILES if (folder / n).is_file()), None)
    if names_file is None:
        raise DatasetError(f"{folder}: no class names file; expected {' or '.join(_NAMES_FILES)} (one name per line)")
    images_dir = folder / "images"
    if not images_dir.is_dir():
        raise DatasetError(f"{folder}: no images/ folder; expected images/<subset>/ and labels/<subset>/")
    subsets: list[SubsetFiles] = []
    problems: list[Problem] = []
    where = Location(str(images_dir))
    direct = _list_folder(images_dir, recursive=False)
    if direct:
        subsets.append(_subset(None, direct, label_in_labels_dir, problems, where))
    for sub in sorted(p for p in images_dir.iterdir() if p.is_dir()):
        images = _list_folder(sub)
        if images:
            subsets.append(_subset(sub.name, images, label_in_labels_dir, problems, where))
    if not subsets:
        raise DatasetError(f"{images_dir}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return YoloLayout(folder, names_from_file(names_file), tuple(subsets), tuple(problems))


def find_layout(path: Path) -> YoloLayout:
    """Locate a YOLO dataset from a folder, a `*.yaml`, an `obj.data` or a names file.

    DatasetError naming what was looked for when no layout matches.
    """
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return _ultralytics(path)
        if path.name == "obj.data":
            return _cvat(path)
        if path.name in _NAMES_FILES:
            obj_data = path.parent / "obj.data"
            return _cvat(obj_data) if obj_data.is_file() else _loose(path.parent)
        raise DatasetError(f"{path}: not a YOLO dataset file; expected a data.yaml, obj.data, obj.names or classes.txt")
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    for name in _YAML_NAMES:
        if (path / name).is_file():
            return _ultralytics(path / name)
    if (path / "obj.data").is_file():
        return _cvat(path / "obj.data")
    if (path / "images").is_dir() and any((path / n).is_file() for n in _NAMES_FILES):
        return _loose(path)
    yamls = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    if len(yamls) == 1:
        return _ultralytics(yamls[0])
    if len(yamls) > 1:
        raise DatasetError(f"{path}: several yaml files ({', '.join(p.name for p in yamls)}); pass the one to read")
    if (path / "images").is_dir():
        return _loose(path)
    raise DatasetError(
        f"{path}: not a YOLO dataset; looked for data.yaml (Ultralytics), obj.data (CVAT YOLO 1.1), "
        "and images/ with obj.names or classes.txt"
    )
