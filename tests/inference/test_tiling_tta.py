"""Tiling (windows, shifting, merging across overlaps) and horizontal-flip TTA, with a fake detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detforge.inference.tiling import TileConfig, predict_tiled, shift_detections, tile_windows
from detforge.inference.tta import flip_detections, merge_detections, predict_flip_tta
from detforge.structures.detections import Detections


def _tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255


def _dets(boxes: list[list[float]], labels: list[int], scores: list[float], size: tuple[int, int]) -> Detections:
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(labels, dtype=torch.int64),
        torch.tensor(scores, dtype=torch.float32),
        size,
    )


# -- windows --------------------------------------------------------------------------------------
def test_tile_windows_cover_the_image_with_overlap() -> None:
    config = TileConfig(size=100, overlap=0.2)
    windows = tile_windows(200, 120, config)
    assert windows == [(0, 0, 100, 100), (80, 0, 180, 100), (100, 0, 200, 100),
                       (0, 20, 100, 120), (80, 20, 180, 120), (100, 20, 200, 120)]  # fmt: skip
    covered = np.zeros((120, 200), dtype=int)
    for x0, y0, x1, y1 in windows:
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    assert tile_windows(90, 50, config) == [(0, 0, 90, 50)]  # smaller than a tile: the whole image
    assert tile_windows(1000, 100, TileConfig(size=640, overlap=0.0)) == [(0, 0, 640, 100), (360, 0, 1000, 100)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 8}, "size"),
        ({"overlap": 1.0}, "overlap"),
        ({"overlap": -0.1}, "overlap"),
        ({"iou_threshold": 0}, "iou"),
    ],
)
def test_tile_config_is_validated(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"TileConfig.{field}"):
        TileConfig(**kwargs)  # type: ignore[arg-type]


def test_shift_detections_moves_boxes_and_pastes_masks() -> None:
    mask = torch.zeros((1, 10, 20), dtype=torch.bool)
    mask[0, 2:4, 5:7] = True
    dets = Detections(torch.tensor([[5.0, 2.0, 7.0, 4.0]]), torch.tensor([1]), torch.tensor([0.9]), (10, 20), mask)
    shifted = shift_detections(dets, (30, 40, 50, 50), (60, 80))
    assert shifted.boxes.tolist() == [[35.0, 42.0, 37.0, 44.0]]
    assert shifted.image_size == (60, 80)
    assert shifted.masks is not None and shifted.masks.shape == (1, 60, 80)
    ys, xs = torch.nonzero(shifted.masks[0], as_tuple=True)
    assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == (35, 42, 37, 44)


# -- tiled prediction -----------------------------------------------------------------------------
def test_tiling_finds_a_small_object_and_merges_duplicates(fake, painter) -> None:  # type: ignore[no-untyped-def]
    # small: 10 px (3.2 px after the fake's resize of the whole 200 px image: invisible), inside the overlap
    # of four tiles; large: 60 px, whole in four tiles and in the full image.
    image = _tensor(painter(200, 120, [(85, 40, 95, 50, 200, 1), (120, 30, 180, 90, 150, 2)]))
    whole = fake.predict([image])[0]
    assert whole.boxes.tolist() == [[120.0, 30.0, 180.0, 90.0]]
    fake.batches.clear()
    dets = predict_tiled(fake.predict, image, TileConfig(size=100, overlap=0.2), batch_size=4)
    assert fake.batches == [4, 2, 1]  # six tiles in batches of four, then the full image
    assert dets.image_size == (120, 200)
    assert dets.boxes.tolist() == [[85.0, 40.0, 95.0, 50.0], [120.0, 30.0, 180.0, 90.0]]
    assert dets.labels.tolist() == [1, 2]
    assert dets.scores.tolist() == pytest.approx([200 / 255, 150 / 255])


def test_tiling_without_the_full_image_and_small_images(fake, painter) -> None:  # type: ignore[no-untyped-def]
    image = _tensor(painter(200, 120, [(85, 40, 95, 50, 200, 1)]))
    dets = predict_tiled(fake.predict, image, TileConfig(size=100, include_full_image=False), batch_size=8)
    assert fake.batches == [6]
    assert dets.boxes.tolist() == [[85.0, 40.0, 95.0, 50.0]]
    fake.batches.clear()
    small = _tensor(painter(80, 60, [(10, 10, 30, 30, 99, 0)]))
    assert predict_tiled(fake.predict, small, TileConfig(size=100)).boxes.tolist() == [[10.0, 10.0, 30.0, 30.0]]
    assert fake.batches == [1]


# -- merging and flip TTA -------------------------------------------------------------------------
def test_merge_is_class_aware_and_supports_weighted_boxes() -> None:
    size = (100, 100)
    a = _dets([[10, 10, 50, 50], [10, 10, 50, 50]], [0, 1], [0.9, 0.4], size)
    b = _dets([[14, 10, 54, 50], [70, 70, 90, 90]], [0, 0], [0.3, 0.8], size)
    nms = merge_detections([a, b], size)
    assert nms.labels.tolist() == [0, 0, 1]
    assert nms.boxes.tolist() == [[10, 10, 50, 50], [70, 70, 90, 90], [10, 10, 50, 50]]
    assert nms.scores.tolist() == pytest.approx([0.9, 0.8, 0.4])
    weighted = merge_detections([a, b], size, method="weighted")
    assert weighted.boxes[0].tolist() == pytest.approx([11.0, 10.0, 51.0, 50.0])  # (0.9*10 + 0.3*14) / 1.2
    assert weighted.boxes[1:].tolist() == nms.boxes[1:].tolist()
    assert len(merge_detections([], size)) == 0
    with pytest.raises(ValueError, match="frame"):
        merge_detections([a, _dets([], [], [], (5, 5))], size)


def test_flip_detections_mirrors_boxes_and_masks() -> None:
    masks = torch.zeros((1, 4, 10), dtype=torch.bool)
    masks[0, :, 0:2] = True
    dets = Detections(torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([0]), torch.tensor([0.5]), (4, 10), masks)
    flipped = flip_detections(dets)
    assert flipped.boxes.tolist() == [[8.0, 1.0, 10.0, 3.0]]
    assert flipped.masks is not None and flipped.masks[0, 0].tolist() == [False] * 8 + [True] * 2
    assert flip_detections(flipped).boxes.tolist() == dets.boxes.tolist()


def test_flip_tta_unflips_what_only_the_mirror_sees(fake_class, painter) -> None:  # type: ignore[no-untyped-def]
    blind_right = fake_class(left_half_only=True)
    image = _tensor(painter(100, 40, [(5, 5, 25, 25, 120, 0), (60, 10, 90, 30, 240, 2)]))
    assert blind_right.predict([image])[0].boxes.tolist() == [[5.0, 5.0, 25.0, 25.0]]
    blind_right.batches.clear()
    (dets,) = predict_flip_tta(blind_right.predict, [image])
    assert blind_right.batches == [2]  # the image and its mirror in one forward pass
    assert dets.boxes.tolist() == [[60.0, 10.0, 90.0, 30.0], [5.0, 5.0, 25.0, 25.0]]
    assert dets.labels.tolist() == [2, 0]


def test_flip_tta_merges_objects_seen_in_both_views(fake, painter) -> None:  # type: ignore[no-untyped-def]
    images = [_tensor(painter(50, 30, [(3, 4, 20, 20, 100, 1)])), _tensor(painter(30, 30, []))]
    merged = predict_flip_tta(fake.predict, images, method="weighted")
    assert [len(d) for d in merged] == [1, 0]
    assert merged[0].boxes.tolist() == [[3.0, 4.0, 20.0, 20.0]]
    assert [d.image_size for d in merged] == [(30, 50), (30, 30)]
