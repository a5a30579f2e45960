"""Small, valid datasets of every readable format, written to a folder, for the reliability tests.

`build(fmt, root)` writes a two-image dataset (40x30 and 32x24 PNGs, three boxes of two classes) in
format `fmt` under `root` and returns (path to load, annotation files a user edits); the fixtures
`build_dataset` and `snapshot_files` hand these functions to the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")
SIZES = {"a": (40, 30), "b": (32, 24)}
BOXES = {"a": [("cat", 2, 3, 20, 18), ("dog", 22, 5, 38, 28)], "b": [("cat", 1, 1, 30, 20)]}
CLASSES = ("cat", "dog")


def _image(path: Path, size: tuple[int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _images(folder: Path) -> None:
    for seed, (name, size) in enumerate(SIZES.items()):
        _image(folder / f"{name}.png", size, seed)


def _coco(root: Path) -> tuple[Path, list[Path]]:
    _images(root / "images" / "train")
    images = [
        {"id": i + 1, "file_name": f"{n}.png", "width": s[0], "height": s[1]} for i, (n, s) in enumerate(SIZES.items())
    ]
    anns: list[dict[str, object]] = []
    for i, name in enumerate(SIZES):
        for cls, x0, y0, x1, y1 in BOXES[name]:
            anns.append({
                "id": len(anns) + 1, "image_id": i + 1, "category_id": CLASSES.index(cls) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
            })  # fmt: skip
    cats = [{"id": i + 1, "name": c, "supercategory": ""} for i, c in enumerate(CLASSES)]
    doc = {"images": images, "annotations": anns, "categories": cats}
    ann = _text(root / "annotations" / "instances_train.json", json.dumps(doc, indent=1))
    return root, [ann]


def _yolo(root: Path) -> tuple[Path, list[Path]]:
    _images(root / "images" / "train")
    files = [_text(root / "data.yaml", "path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n")]
    for name, (w, h) in SIZES.items():
        lines = [
            f"{CLASSES.index(c)} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
            f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
            for c, x0, y0, x1, y1 in BOXES[name]
        ]
        files.append(_text(root / "labels" / "train" / f"{name}.txt", "\n".join(lines) + "\n"))
    return root, files


def _voc(root: Path) -> tuple[Path, list[Path]]:
    _images(root / "JPEGImages")
    files = [_text(root / "ImageSets" / "Main" / "train.txt", "a\nb\n")]
    for name, (w, h) in SIZES.items():
        objects = "".join(
            f"  <object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>\n"
            for c, x0, y0, x1, y1 in BOXES[name]
        )
        xml = (
            f"<annotation>\n  <filename>{name}.png</filename>\n"
            f"  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n{objects}</annotation>\n"
        )
        files.append(_text(root / "Annotations" / f"{name}.xml", xml))
    return root, files


def _cvat(root: Path) -> tuple[Path, list[Path]]:
    _images(root / "images")
    labels = "".join(f"<label><name>{c}</name></label>" for c in CLASSES)
    body = ""
    for i, (name, (w, h)) in enumerate(SIZES.items()):
        boxes = "".join(
            f'    <box label="{c}" occluded="0" xtl="{x0}" ytl="{y0}" xbr="{x1}" ybr="{y1}" z_order="0"></box>\n'
            for c, x0, y0, x1, y1 in BOXES[name]
        )
        body += f'  <image id="{i}" name="{name}.png" width="{w}" height="{h}">\n{boxes}  </image>\n'
    xml = (
        f"<annotations>\n  <version>1.1</version>\n  <meta><task><labels>{labels}</labels></task></meta>\n"
        f"{body}</annotations>\n"
    )
    ann = _text(root / "annotations.xml", xml)
    return ann, [ann]


def _labelme(root: Path) -> tuple[Path, list[Path]]:
    _images(root)
    files = []
    for name, (w, h) in SIZES.items():
        shapes: list[dict[str, object]] = [
            {"label": c, "shape_type": "rectangle", "points": [[x0, y0], [x1, y1]], "group_id": None, "flags": {}}
            for c, x0, y0, x1, y1 in BOXES[name]
        ]
        doc: dict[str, object] = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png"}
        doc.update(imageData=None, imageWidth=w, imageHeight=h)
        files.append(_text(root / f"{name}.json", json.dumps(doc, indent=1)))
    return root, files


def _labelstudio(root: Path) -> tuple[Path, list[Path]]:
    _images(root / "images")
    tasks = []
    for i, (name, (w, h)) in enumerate(SIZES.items()):
        results = [
            {
                "id": f"r{i}{j}",
                "type": "rectanglelabels",
                "from_name": "label",
                "to_name": "image",
                "original_width": w,
                "original_height": h,
                "image_rotation": 0,
                "value": {
                    "x": 100 * x0 / w,
                    "y": 100 * y0 / h,
                    "width": 100 * (x1 - x0) / w,
                    "height": 100 * (y1 - y0) / h,
                    "rotation": 0,
                    "rectanglelabels": [c],
                },
            }
            for j, (c, x0, y0, x1, y1) in enumerate(BOXES[name])
        ]
        annotation = {"id": 100 + i, "was_cancelled": False, "result": results}
        tasks.append({"id": i + 1, "data": {"image": f"/data/upload/1/{name}.png"}, "annotations": [annotation]})
    ann = _text(root / "export.json", json.dumps(tasks, indent=1))
    return ann, [ann]


def build(fmt: str, root: Path) -> tuple[Path, list[Path]]:
    """Write a valid two-image dataset in `fmt` under `root`: (path to load, the annotation files)."""
    builders = {
        "coco": _coco, "yolo": _yolo, "voc": _voc, "cvat": _cvat, "labelme": _labelme, "labelstudio": _labelstudio,
    }  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    return builders[fmt](root)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root`: relative path -> (bytes, mtime in ns)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def build_dataset():  # type: ignore[no-untyped-def]
    """`build_dataset(fmt, root) -> (path to load, annotation files)`: see `build`."""
    return build


@pytest.fixture
def snapshot_files():  # type: ignore[no-untyped-def]
    """`snapshot_files(root) -> {relative path: (bytes, mtime_ns)}`."""
    return snapshot


@pytest.fixture
def memory_cap():  # type: ignore[no-untyped-def]
    """`with memory_cap(extra_bytes):` caps this process's address space at its current size + extra_bytes,
    so that a runaway allocation raises MemoryError in the test instead of exhausting the shared machine."""
    import contextlib
    import resource

    @contextlib.contextmanager
    def cap(extra_bytes: int = 3 << 30):  # type: ignore[no-untyped-def]
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size + extra_bytes, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    return cap
