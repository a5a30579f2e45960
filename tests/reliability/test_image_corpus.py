"""A corpus of odd and hostile image files through the Predictor (fake detector) and the training loader:
each gives the right displayed size or a reported reason, never another exception; plus a short fuzz of
`load_image_bytes` on mutated encodings."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import Tensor

from detforge.data.dataset import Dataset
from detforge.data.loader import DetectionDataset
from detforge.errors import DatasetError, InvalidImage
from detforge.inference import Predictor
from detforge.inference.sources import load_image_bytes
from detforge.structures import Categories, Category, ImageRecord
from detforge.structures.detections import Detections


class BoxEverything:
    """Fake detector: one box covering the whole image, class 0, score 0.9; checks its input."""

    num_classes = 1

    def predict(self, images: Sequence[Tensor]) -> list[Detections]:
        out = []
        for image in images:
            assert image.dtype == torch.float32 and image.shape[0] == 3
            assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
            h, w = int(image.shape[1]), int(image.shape[2])
            box = torch.tensor([[0.0, 0.0, float(w), float(h)]])
            out.append(Detections(box, torch.tensor([0]), torch.tensor([0.9]), (h, w)))
        return out


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def corpus() -> tuple[dict[str, tuple[bytes, tuple[int, int]]], dict[str, bytes]]:
    """(good files: name -> (bytes, displayed (height, width)), bad files: name -> bytes)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    good: dict[str, tuple[bytes, tuple[int, int]]] = {
        "one.png": (_save(Image.new("RGB", (1, 1), "red"), "PNG"), (1, 1)),
        "two.png": (_save(Image.new("L", (2, 2), 9), "PNG"), (2, 2)),
        "strip.png": (_save(Image.new("L", (100_000, 1), 7), "PNG"), (1, 100_000)),
        "cmyk.jpg": (_save(rgb.convert("CMYK"), "JPEG"), (30, 40)),
        "sixteen.png": (_save(Image.fromarray(rng.integers(0, 65535, (30, 40), dtype=np.uint16)), "PNG"), (30, 40)),
        "palette.png": (_save(rgb.convert("P"), "PNG", transparency=0), (30, 40)),
        "la.png": (_save(rgb.convert("LA"), "PNG"), (30, 40)),
        "rgba.png": (_save(rgb.convert("RGBA"), "PNG"), (30, 40)),
        "frames.gif": (_save(rgb, "GIF", save_all=True, append_images=[rgb.rotate(90)]), (30, 40)),
        "frames.tif": (_save(rgb, "TIFF", save_all=True, append_images=[rgb.resize((10, 10))]), (30, 40)),
    }
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        size = (40, 30) if orientation >= 5 else (30, 40)  # 5..8 swap width and height
        good[f"exif{orientation}.jpg"] = (_save(rgb, "JPEG", exif=exif.tobytes()), size)
    jpeg = _save(rgb, "JPEG")
    bad = {
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "empty.jpg": b"",
        "random.jpg": rng.integers(0, 255, 3000, dtype=np.uint8).tobytes(),
        "page.jpg": b"<!DOCTYPE html><html><body>not an image</body></html>",
        "doc.jpg": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "vector.jpg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>',
        "bomb.png": _png_header_only(50_000, 50_000),
    }
    return good, bad


def _write(folder: Path) -> tuple[dict[str, tuple[int, int]], set[str]]:
    good, bad = corpus()
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in good.items():
        (folder / name).write_bytes(data)
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    assert len(bad["bomb.png"]) < 4096
    return {name: size for name, (_, size) in good.items()}, set(bad)


@pytest.mark.timeout(60)
def test_predictor_reports_each_bad_file_and_predicts_the_rest(tmp_path: Path) -> None:
    sizes, bad = _write(tmp_path / "corpus")
    predictor = Predictor(BoxEverything(), device="cpu", batch_size=4)
    results = {r.source: r for r in predictor.predict_many(tmp_path / "corpus")}
    assert set(results) == set(sizes) | bad
    for name, size in sizes.items():
        result = results[name]
        assert result.ok, (name, result.error)
        assert result.image_size == size, name
        assert result.detections is not None
        assert result.detections.boxes.tolist() == [[0.0, 0.0, float(size[1]), float(size[0])]]
    for name in bad:
        result = results[name]
        assert not result.ok and result.image_size is None, name
        assert result.error and len(result.error) > 10, name  # a reason, not just a flag
    assert "pixels" in (results["bomb.png"].error or "")


@pytest.mark.timeout(60)
def test_training_loader_decodes_good_files_and_names_bad_ones(tmp_path: Path) -> None:
    sizes, bad = _write(tmp_path / "corpus")
    names = sorted(sizes) + sorted(bad)
    records = tuple(
        ImageRecord(id=i + 1, file_name=n, path=tmp_path / "corpus" / n, width=0, height=0) for i, n in enumerate(names)
    )
    dataset = Dataset(records, (), Categories((Category(1, "thing"),)), tmp_path / "corpus", "coco")
    loader = DetectionDataset(dataset, None)
    for i, name in enumerate(names):
        if name in sizes:
            image, target = loader[i]
            assert tuple(image.shape) == (3, *sizes[name]), name
            assert image.dtype == torch.float32 and float(image.max()) <= 1.0
            assert target.image_id == i + 1
        else:
            with pytest.raises(DatasetError, match=rf"{name}.*image id {i + 1}"):
                loader[i]


@pytest.mark.timeout(60)
def test_load_image_bytes_fuzz_gives_an_image_or_invalid_image() -> None:
    good, _ = corpus()
    seeds = [data for name, (data, _) in sorted(good.items()) if name != "strip.png"]
    outcomes = {"image": 0, "invalid": 0}

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(
        pick=st.integers(0, len(seeds) - 1),
        at=st.floats(0.0, 0.999),
        op=st.sampled_from(["truncate", "flip", "insert", "zero"]),
        noise=st.binary(min_size=1, max_size=16),
    )
    def run(pick: int, at: float, op: str, noise: bytes) -> None:
        data = seeds[pick]
        i = int(len(data) * at)
        mutated = {
            "truncate": data[:i],
            "flip": data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :],
            "insert": data[:i] + noise + data[i:],
            "zero": data[:i] + b"\0" * len(noise) + data[i + len(noise) :],
        }[op]
        try:
            image = load_image_bytes(mutated, name="fuzz", max_pixels=4_000_000)
        except InvalidImage as exc:
            assert "fuzz" in str(exc)
            outcomes["invalid"] += 1
            return
        assert image.mode == "RGB" and image.width * image.height <= 4_000_000
        outcomes["image"] += 1

    run()
    assert outcomes["image"] > 0 and outcomes["invalid"] > 0
