"""Image sources: every kind of input, every odd image mode, and refusal of bad or oversized images."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.errors import InvalidImage
from detforge.inference.sources import (
    ImageSource,
    array_to_image,
    decode,
    iter_sources,
    load_image_bytes,
    load_image_file,
    to_rgb,
)


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid-looking PNG declaring width x height 8-bit RGB with a few KB of (zero) image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 200_000, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _both(tmp_path: Path, data: bytes, name: str = "x.png") -> list[Image.Image]:
    """The image decoded from bytes and from a file holding the same bytes."""
    path = tmp_path / name
    path.write_bytes(data)
    return [load_image_bytes(data), load_image_file(path)]


# -- colour modes ---------------------------------------------------------------------------------
def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    data = _encode(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=100)
    for im in _both(tmp_path, data, "c.jpg"):
        assert (im.mode, im.size) == ("RGB", (8, 6))
        r, g, b = im.getpixel((3, 3))  # type: ignore[misc]
        assert r > 240 and g < 15 and b < 15


def test_16_bit_grayscale_is_scaled_to_8_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    for im in _both(tmp_path, data):
        assert im.mode == "RGB"
        assert np.asarray(im)[0, :, 0].tolist() == [0, 1, 128, 255]
        assert np.array_equal(np.asarray(im)[..., 0], np.asarray(im)[..., 2])


def test_32_bit_and_float_modes() -> None:
    eight_bit = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), "I")
    assert np.asarray(to_rgb(eight_bit))[0, :, 0].tolist() == [0, 100, 255]
    sixteen_bit = Image.fromarray(np.array([[0, 65535]], dtype=np.int32), "I")
    assert np.asarray(to_rgb(sixteen_bit))[0, :, 0].tolist() == [0, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert np.asarray(to_rgb(unit))[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    im = Image.new("P", (4, 2), 0)
    im.putpalette([0, 0, 0, 200, 10, 20] + [0] * (254 * 3))
    im.putpixel((1, 0), 1)
    data = _encode(im, "PNG", transparency=0)
    for decoded in _both(tmp_path, data):
        arr = np.asarray(decoded)
        assert arr[0, 0].tolist() == [255, 255, 255]  # transparent black -> white
        assert arr[0, 1].tolist() == [200, 10, 20]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(tmp_path: Path, mode: str) -> None:
    if mode == "RGBA":
        arr = np.array([[[0, 0, 0, 0], [10, 200, 30, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    else:
        arr = np.array([[[0, 0], [90, 255], [0, 128]]], dtype=np.uint8)
    data = _encode(Image.fromarray(arr, mode), "PNG")
    for decoded in _both(tmp_path, data):
        out = np.asarray(decoded)
        assert out[0, 0].tolist() == [255, 255, 255]
        assert out[0, 1].tolist() == ([10, 200, 30] if mode == "RGBA" else [90, 90, 90])
        assert 125 <= int(out[0, 2, 0]) <= 129  # half-transparent black on white -> mid grey


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    data = _encode(Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L"), "PNG")
    for decoded in _both(tmp_path, data):
        assert np.asarray(decoded)[0].tolist() == [[0, 0, 0], [77, 77, 77], [255, 255, 255]]


def test_exif_rotation_applied_to_files_bytes_and_pil_images(tmp_path: Path) -> None:
    raw = np.zeros((40, 60, 3), dtype=np.uint8)
    raw[10:20, 5:15] = 255  # raw frame: x 5..15, y 10..20
    exif = Image.Exif()
    exif[0x0112] = 6  # display = raw rotated 90 degrees clockwise
    data = _encode(Image.fromarray(raw), "PNG", exif=exif.tobytes())
    (tmp_path / "r.png").write_bytes(data)
    with Image.open(tmp_path / "r.png") as opened:
        opened.load()
        from_pil = decode(ImageSource("<image>", image=opened))
    for decoded in [*_both(tmp_path, data), from_pil]:
        assert decoded.size == (40, 60)  # (width, height) as displayed
        ys, xs = np.nonzero(np.asarray(decoded)[..., 0])
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (20, 5, 30, 15)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_multi_frame_files_give_the_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (6, 4), (255, 0, 0)), Image.new("RGB", (6, 4), (0, 0, 255))]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    for decoded in _both(tmp_path, data, f"m.{fmt.lower()}"):
        r, _, b = decoded.getpixel((2, 2))  # type: ignore[misc]
        assert r > 200 and b < 50


# -- refusals -------------------------------------------------------------------------------------
def test_decompression_bomb_refused_from_the_header(tmp_path: Path) -> None:
    data = _bomb_png()
    assert len(data) < 10_000
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    start = time.perf_counter()
    for load in (lambda: load_image_bytes(data, "bomb"), lambda: load_image_file(path)):
        with pytest.raises(InvalidImage, match=r"exceeds"):
            load()
    assert time.perf_counter() - start < 2.0  # 7.5 GB of pixels were never allocated


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = _encode(Image.new("RGB", (30, 20)), "PNG")
    with pytest.raises(InvalidImage, match=r"30x20 pixels exceeds the limit of 500 pixels"):
        load_image_bytes(data, "small", max_pixels=500)
    assert load_image_bytes(data, max_pixels=600).size == (30, 20)


def test_corrupt_truncated_and_non_images_are_invalid(tmp_path: Path) -> None:
    good = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    cases = {
        "empty": (b"", r"empty data"),
        "text": (b"hello, I am not an image", r"not a readable image"),
        "truncated": (good[: len(good) // 2], r"cannot decode|truncated|cannot read"),
    }
    for name, (data, pattern) in cases.items():
        with pytest.raises(InvalidImage, match=pattern) as info:
            load_image_bytes(data, name)
        assert name in str(info.value)
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        with pytest.raises(InvalidImage, match=str(path).replace("\\", "\\\\")):
            load_image_file(path)
    with pytest.raises(InvalidImage, match="file not found"):
        load_image_file(tmp_path / "missing.png")


def test_bytes_in_an_exotic_format_are_refused() -> None:
    data = _encode(Image.new("RGB", (4, 4)), "ICO")
    with pytest.raises(InvalidImage, match="not a readable image"):
        load_image_bytes(data, "icon")


# -- numpy arrays ---------------------------------------------------------------------------------
def test_arrays_gray_rgb_bgr_and_bgra() -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    assert np.asarray(array_to_image(rgb))[0, 0].tolist() == [200, 0, 0]
    assert np.asarray(array_to_image(rgb, "BGR"))[0, 0].tolist() == [0, 0, 200]
    gray = np.full((2, 3), 9, dtype=np.uint8)
    assert np.asarray(array_to_image(gray))[1, 2].tolist() == [9, 9, 9]
    assert np.asarray(array_to_image(gray[..., None]))[1, 2].tolist() == [9, 9, 9]
    bgra = np.zeros((1, 2, 4), dtype=np.uint8)
    bgra[0, 1] = [255, 0, 0, 255]  # opaque blue in BGRA; pixel 0 fully transparent
    out = np.asarray(array_to_image(bgra, "BGR"))
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 255]]
    view = np.zeros((4, 6, 3), dtype=np.uint8)[::2, ::2]  # non-contiguous
    assert array_to_image(view).size == (3, 2)


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.zeros((4, 4, 3), dtype=np.float32), r"dtype is float32, expected uint8"),
        (np.zeros((3, 20, 30), dtype=np.uint8), r"channels-first"),
        (np.zeros((4, 4, 2), dtype=np.uint8), r"expected \[H, W\]"),
        (np.zeros((0, 4, 3), dtype=np.uint8), r"empty"),
        (np.zeros((2, 2, 2, 3), dtype=np.uint8), r"expected \[H, W\]"),
    ],
)
def test_bad_arrays_are_refused(array: np.ndarray, pattern: str) -> None:
    with pytest.raises(InvalidImage, match=pattern):
        array_to_image(array, name="frame")


# -- enumeration ----------------------------------------------------------------------------------
def test_folder_glob_file_and_list_sources(tmp_path: Path) -> None:
    png = _encode(Image.new("RGB", (4, 4)), "PNG")
    for rel in ("b.png", "a.JPG", "sub/c.png", "sub/deeper/d.webp", "notes.txt", "sub/labels.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(png)
    folder = list(iter_sources(tmp_path))
    assert [s.name for s in folder] == ["a.JPG", "b.png", "sub/c.png", "sub/deeper/d.webp"]
    assert all(s.path == tmp_path / s.name for s in folder)
    globbed = list(iter_sources(str(tmp_path / "**" / "*.png")))
    assert sorted(Path(s.name).name for s in globbed) == ["b.png", "c.png"]
    (single,) = iter_sources(tmp_path / "notes.txt")  # a file given by name is taken whatever its extension
    assert single.path == tmp_path / "notes.txt"
    arr = np.zeros((2, 2, 3), dtype=np.uint8)
    pil = Image.new("RGB", (3, 3))
    mixed = list(iter_sources([tmp_path / "b.png", png, arr, pil, tmp_path / "gone.png"], channels="BGR"))
    names = [s.name for s in mixed]
    assert names == [str(tmp_path / "b.png"), "<bytes 1>", "<array 2>", "<image 3>", str(tmp_path / "gone.png")]
    assert mixed[2].channels == "BGR" and mixed[2].array is arr and mixed[1].data == png
    with pytest.raises(InvalidImage, match="file not found"):
        decode(mixed[4])  # a missing file inside a list fails when decoded, not when listed


def test_missing_path_and_wrong_types() -> None:
    with pytest.raises(InvalidImage, match="no such file or folder"):
        list(iter_sources("/definitely/not/here"))
    with pytest.raises(TypeError, match="cannot predict on a int"):
        list(iter_sources([1]))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="exactly one of"):
        ImageSource("x")
