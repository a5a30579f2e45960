from pathlib import Path

import pytest

from detforge.export import ExportError, benchmark_model, benchmark_table


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
