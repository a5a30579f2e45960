"""Crop geometry (padding, clipping, empty boxes), the recogniser's resize and batching."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.reading.crops import batches, crop_region, crop_regions, to_input


def test_padding_is_a_fraction_of_the_box_height_on_every_side() -> None:
    assert crop_region((100, 50, 160, 70), 0.0, 400, 300) == (100, 50, 160, 70)
    # height 20, padding 0.25 -> 5 px on every side
    assert crop_region((100, 50, 160, 70), 0.25, 400, 300) == (95, 45, 165, 75)
    # fractional boxes grow outwards to whole pixels
    assert crop_region((10.4, 20.6, 30.2, 40.5), 0.0, 400, 300) == (10, 20, 31, 41)


def test_padding_is_clipped_to_the_image() -> None:
    assert crop_region((2, 3, 50, 23), 0.5, 60, 30) == (0, 0, 60, 30)
    assert crop_region((-20, -5, 30, 25), 0.0, 100, 100) == (0, 0, 30, 25)


@pytest.mark.parametrize(
    "box",
    [(10, 10, 10, 30), (10, 30, 40, 20), (500, 10, 520, 30), (-40, 10, -10, 30), (10, 10, float("nan"), 30)],
    ids=["zero-width", "inverted", "right-of-image", "left-of-image", "nan"],
)
def test_empty_degenerate_and_outside_boxes_give_no_region(box: tuple[float, ...]) -> None:
    assert crop_region(box, 0.15, 400, 300) is None


def test_crop_regions_cut_the_padded_pixels() -> None:
    image = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    crops = crop_regions(image, np.array([[10, 10, 30, 20], [0, 0, 0, 0]], dtype=np.float32), 0.1)
    assert crops[1] is None
    assert crops[0] is not None
    np.testing.assert_array_equal(crops[0], image[9:21, 9:31])


def test_to_input_resizes_to_height_48_keeping_aspect_and_normalises() -> None:
    crop = np.zeros((24, 60, 3), dtype=np.uint8)
    crop[..., 0] = 255  # pure red
    arr = to_input(crop)
    assert arr.shape == (3, 48, 120) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[2], 1.0)  # BGR order: red is the last channel, 255 -> 1
    np.testing.assert_allclose(arr[0], -1.0)  # 0 -> -1
    assert to_input(crop, bgr=False)[0].min() == pytest.approx(1.0)
    assert to_input(np.zeros((48, 2000, 3), np.uint8), max_width=320).shape == (3, 48, 320)
    assert to_input(np.zeros((200, 1, 3), np.uint8)).shape == (3, 48, 1)


def test_batches_group_by_width_and_pad_on_the_right() -> None:
    inputs = [np.full((3, 48, w), 0.5, dtype=np.float32) for w in (100, 20, 60, 30, 90)]
    out = batches(inputs, 2)
    assert [b.indices for b in out] == [(1, 3), (2, 4), (0,)]
    assert [b.array.shape for b in out] == [(2, 3, 48, 30), (2, 3, 48, 90), (1, 3, 48, 100)]
    assert out[0].widths == (20, 30)
    first = out[0].array[0]
    assert (first[:, :, :20] == 0.5).all() and (first[:, :, 20:] == 0.0).all()
    assert sorted(i for b in out for i in b.indices) == list(range(5))
    assert batches(inputs[:1], 4, min_width=64)[0].array.shape == (1, 3, 48, 100)
    assert batches(inputs[1:2], 4, min_width=64)[0].array.shape == (1, 3, 48, 64)
    assert batches([], 4) == []
