"""User files keep their bytes and modification times through check, stats, show, split, convert and train."""

from __future__ import annotations

from pathlib import Path

import pytest

import detforge
from detforge.api.data import check, convert, show, split, stats

FORMATS = ("coco", "yolo", "voc", "cvat", "labelme", "labelstudio")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_data_command_leaves_the_input_untouched(fmt: str, tmp_path: Path, build_dataset, snapshot_files) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "user"
    path, _ = build_dataset(fmt, root)
    before = snapshot_files(root)
    assert len(before) >= 3
    out = tmp_path / "out"
    report = check(path)
    assert "Summary: 2 images, 3 annotations" in report.format_text()
    assert stats(path, out=out / "stats").__class__.__name__
    assert (out / "stats" / "index.html").is_file()
    assert show(path, out=out / "show", n=2).is_file()
    written = split(path, out=out / "split", ratios=(0.5, 0.5), to="coco")
    assert all(p.is_dir() for p in written)
    for to in ("coco", "yolo", "voc"):
        converted = convert(path, out / f"conv_{to}", to=to)
        assert len(detforge.load_dataset(converted).annotations) == 3
    assert snapshot_files(root) == before


TRAIN_OVERRIDES = (
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=64",
    "train.device=cpu",
    "train.batch_size=2",
    "train.max_iter=2",
    "train.warmup_iters=1",
    "data.num_workers=0",
    "data.val=null",
    "data.test=null",
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_training_leaves_the_input_untouched(fmt: str, tmp_path: Path, build_dataset, snapshot_files) -> None:  # type: ignore[no-untyped-def]
    path, _ = build_dataset(fmt, tmp_path / "export")
    root = tmp_path / "user"
    split(path, out=root, ratios=(0.5, 0.5), to=fmt)  # the user's split dataset, in its own format
    before = snapshot_files(root)
    assert len(before) >= 3
    result = detforge.train(root, TRAIN_OVERRIDES, out=tmp_path / "run", progress=False)
    assert result.model_path.is_file() and result.model_path.is_relative_to(tmp_path / "run")
    assert snapshot_files(root) == before
