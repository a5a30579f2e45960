from pathlib import Path

import pytest

from detforge.cli import build_parser
from detforge.errors import InvalidImage
from detforge.export import ExportError, benchmark_model, benchmark_table, load_parity_images
from detforge.export.parity import parity_image_sizes
from detforge.models import load_model


def test_benchmark_rows_are_sane(tiny_artifact: Path) -> None:
    rows = benchmark_model(tiny_artifact, backends=("eager", "onnx"), runs=2, warmup=1, image_size=(60, 80))
    assert [r.backend for r in rows] == ["eager", "onnx"]
    for row in rows:
        assert row.image_size == (60, 80) and row.runs == 2
        assert 0 < row.min_ms <= row.median_ms <= row.max_ms < 60_000
        assert row.images_per_s == pytest.approx(1000 / row.median_ms)
        assert row.detections > 0
    eager, onnx = rows
    assert (eager.max_box_diff_px, eager.max_score_diff, eager.count_mismatch) == (0.0, 0.0, 0)
    assert onnx.max_box_diff_px < 0.05 and onnx.max_score_diff < 1e-3 and onnx.count_mismatch == 0
    table = benchmark_table(rows).splitlines()
    assert table[0].split()[:3] == ["backend", "image", "median"] and table[2].startswith("onnx")


def test_benchmark_rejects_bad_arguments(tiny_artifact: Path) -> None:
    with pytest.raises(ExportError, match=r"backends: expected some of .*got \['tensorrt'\]"):
        benchmark_model(tiny_artifact, backends=("tensorrt",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="runs >= 1"):
        benchmark_model(tiny_artifact, runs=0)


def test_benchmark_on_photos_times_each_and_compares_all(tiny_artifact: Path, image_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Synthetic images made a trained model fast and the comparison weak; real photos can be given instead.
    photos = [image_factory(tmp_path / "a.png", 90, 70, seed=1), image_factory(tmp_path / "b.jpg", 60, 100, seed=2)]
    rows = benchmark_model(tiny_artifact, backends=("eager", "onnx"), runs=2, warmup=1, images=photos)
    eager, onnx = rows
    assert [(r.images, r.image_size, r.runs) for r in rows] == [(2, (70, 90), 2), (2, (70, 90), 2)]
    detector, _ = load_model(tiny_artifact)
    expected = sum(len(detector.predict([im])[0]) for im in load_parity_images(photos))
    assert eager.detections == onnx.detections == expected > 0
    assert (eager.max_box_diff_px, eager.count_mismatch) == (0.0, 0)
    assert onnx.max_box_diff_px < 0.05 and onnx.count_mismatch == 0
    assert benchmark_table(rows).splitlines()[2].split()[:3] == ["onnx", "2", "photos"]
    with pytest.raises(ValueError, match="images or image_size, not both"):
        benchmark_model(tiny_artifact, images=photos, image_size=(50, 50))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(InvalidImage, match=r"broken\.jpg"):
        benchmark_model(tiny_artifact, images=[broken])


def test_benchmark_cli_takes_photos(tiny_artifact: Path, image_factory, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    photo = image_factory(tmp_path / "a.png", 90, 70)
    args = build_parser().parse_args(
        ["benchmark", str(tiny_artifact), "--backends", "eager", "--runs", "1", "--warmup", "0", "--images", str(photo)]
    )
    assert args.handler(args) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["eager", "70x90"]  # one photo: its size


def test_benchmark_default_images_cover_odd_portrait_and_landscape_sizes(tiny_artifact: Path) -> None:
    """Without photos the benchmark times the parity check's images, not one convenient shape, and says so."""
    rows = benchmark_model(tiny_artifact, backends=("eager",), runs=1, warmup=0)
    (row,) = rows
    _, spec = load_model(tiny_artifact)
    assert list(row.image_sizes) == parity_image_sizes(spec.min_size, spec.max_size) and row.synthetic
    assert row.images == len(row.image_sizes) > 1
    assert any(h > w for h, w in row.image_sizes) and any(w > h for h, w in row.image_sizes)
    assert any(h % 2 or w % 2 for h, w in row.image_sizes)
    table = benchmark_table(rows).splitlines()
    assert table[1].split()[:3] == ["eager", str(row.images), "synthetic"]
    sizes = ", ".join(f"{h}x{w}" for h, w in row.image_sizes)
    assert table[-1].startswith(f"synthetic images, height x width: {sizes}")
