"""Augmentation keeps boxes on their objects, caps the size, drops degenerate boxes with their labels."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from detforge.data.transforms import build_transforms, to_float_image

PRESETS = ["none", "light", "standard", "strong"]


Sample = tuple[tv_tensors.Image, tv_tensors.BoundingBoxes]


def _sample(height: int, width: int, box: tuple[int, int, int, int]) -> Sample:
    """A black image with a white rectangle exactly filling `box` (XYXY pixels), and that box."""
    image = torch.zeros((3, height, width), dtype=torch.uint8)
    x0, y0, x1, y1 = box
    image[:, y0:y1, x0:x1] = 255
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([box], dtype=torch.float32), format="XYXY", canvas_size=(height, width)
    )
    return tv_tensors.Image(image), boxes


def _white_extent(image: torch.Tensor) -> tuple[float, float, float, float]:
    """XYXY extent of the pixels at least 85% as bright as the brightest one (the white rectangle, whatever
    the photometric jitter did: every colour operation keeps it the brightest thing in the picture)."""
    brightness = image.float().mean(dim=0)
    ys, xs = torch.nonzero(brightness >= 0.85 * brightness.max(), as_tuple=True)
    return float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1


@pytest.mark.parametrize("preset", PRESETS)
def test_white_rectangle_stays_inside_its_box(preset: str) -> None:
    transform = build_transforms(preset, train=True, max_size=200)  # type: ignore[arg-type]
    image, boxes = _sample(300, 400, (140, 90, 260, 200))
    labels = torch.tensor([3])
    kept = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out_image, out_boxes, out_labels, _ = transform(image, boxes, labels, None)
        assert out_image.dtype == torch.uint8 and max(out_image.shape[-2:]) <= 200
        assert isinstance(out_boxes, tv_tensors.BoundingBoxes)
        assert tuple(out_boxes.canvas_size) == tuple(out_image.shape[-2:])
        if len(out_boxes) == 0:  # a crop may leave the object out; then its label must go too
            assert len(out_labels) == 0
            continue
        kept += 1
        assert out_labels.tolist() == [3]
        bx0, by0, bx1, by1 = out_boxes[0].tolist()
        wx0, wy0, wx1, wy1 = _white_extent(out_image)
        tol = 1.0  # one pixel of interpolation blur at the edges
        inside = bx0 - tol <= wx0 and by0 - tol <= wy0 and wx1 <= bx1 + tol and wy1 <= by1 + tol
        assert inside, (seed, out_boxes, (wx0, wy0, wx1, wy1))
        # and the box is tight: it does not drift away from the rectangle either
        assert abs(bx0 - wx0) <= 2 and abs(by0 - wy0) <= 2 and abs(bx1 - wx1) <= 2 and abs(by1 - wy1) <= 2
    assert kept >= 6


def test_longest_side_is_capped_with_aspect_kept_and_never_upscaled() -> None:
    image, boxes = _sample(300, 500, (100, 50, 300, 250))
    label = torch.tensor([0])
    out_image, out_boxes, _, _ = build_transforms("none", train=True, max_size=250)(image, boxes, label, None)
    assert tuple(out_image.shape) == (3, 150, 250)
    assert out_boxes.tolist() == [[50.0, 25.0, 150.0, 125.0]]
    same_image, same_boxes, _, _ = build_transforms("none", train=False, max_size=1000)(image, boxes, label, None)
    assert tuple(same_image.shape) == (3, 300, 500) and torch.equal(same_image, image)
    assert same_boxes.tolist() == boxes.tolist()
    unlimited, _, _, _ = build_transforms("none", train=False, max_size=None)(image, boxes, label, None)
    assert tuple(unlimited.shape) == (3, 300, 500)


def test_strong_output_also_respects_the_cap_after_zoom_out() -> None:
    transform = build_transforms("strong", train=True, max_size=120)
    image, boxes = _sample(300, 400, (100, 100, 300, 250))
    for seed in range(8):
        torch.manual_seed(seed)
        out_image, _, _, _ = transform(image, boxes, torch.tensor([0]), None)
        assert max(out_image.shape[-2:]) <= 120


def test_evaluation_pipeline_is_deterministic_and_only_resizes() -> None:
    transform = build_transforms("strong", train=False, max_size=200)
    image, boxes = _sample(300, 400, (140, 90, 260, 200))
    torch.manual_seed(1)
    first = transform(image, boxes, torch.tensor([0]), None)
    torch.manual_seed(2)
    second = transform(image, boxes, torch.tensor([0]), None)
    assert torch.equal(first[0], second[0]) and first[1].tolist() == second[1].tolist() == [[70.0, 45.0, 130.0, 100.0]]


def test_same_rng_state_gives_same_augmentation() -> None:
    transform = build_transforms("strong", train=True, max_size=200)
    image, boxes = _sample(300, 400, (140, 90, 260, 200))
    outputs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        outputs.append(transform(image, boxes, torch.tensor([0]), None))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
    assert not (outputs[0][0].shape == outputs[2][0].shape and torch.equal(outputs[0][0], outputs[2][0]))


def test_sanitize_removes_degenerate_boxes_with_their_labels_and_masks() -> None:
    height, width = 200, 400
    image = tv_tensors.Image(torch.zeros((3, height, width), dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[10, 10, 110, 60], [50, 50, 50, 90], [200, 20, 201, 21], [300, 100, 380, 180]]).float(),
        format="XYXY",
        canvas_size=(height, width),
    )  # zero width; 1x1 pixel that becomes 0.5x0.5 after the cap to 200
    masks = torch.zeros((4, height, width), dtype=torch.uint8)
    for k in range(4):
        masks[k, 0, k] = 1  # tag each mask so we can tell which survived
    labels = torch.tensor([0, 1, 2, 3])
    _, out_boxes, out_labels, out_masks = build_transforms("none", train=False, max_size=200)(
        image, boxes, labels, tv_tensors.Mask(masks)
    )
    assert out_labels.tolist() == [0, 3]
    assert out_boxes.tolist() == [[5.0, 5.0, 55.0, 30.0], [150.0, 50.0, 190.0, 90.0]]
    assert out_masks is not None and tuple(out_masks.shape) == (2, 100, 200)
    assert isinstance(out_masks, tv_tensors.Mask)


def test_flip_false_never_mirrors() -> None:
    image, boxes = _sample(60, 80, (5, 10, 30, 50))
    no_flip = build_transforms("light", train=True, max_size=None, flip=False)
    with_flip = build_transforms("light", train=True, max_size=None, flip=True)
    flipped = 0
    for seed in range(10):
        torch.manual_seed(seed)
        assert no_flip(image, boxes, torch.tensor([0]), None)[1].tolist() == [[5.0, 10.0, 30.0, 50.0]]
        torch.manual_seed(seed)
        flipped += with_flip(image, boxes, torch.tensor([0]), None)[1].tolist() == [[50.0, 10.0, 75.0, 50.0]]
    assert 0 < flipped < 10


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown preset 'heavy'"):
        build_transforms("heavy", train=True, max_size=None)  # type: ignore[arg-type]
    image, _ = _sample(20, 30, (1, 1, 5, 5))
    xywh = tv_tensors.BoundingBoxes(torch.tensor([[1.0, 1.0, 4.0, 4.0]]), format="XYWH", canvas_size=(20, 30))
    with pytest.raises(ValueError, match="XYXY"):
        build_transforms("none", train=False, max_size=None)(image, xywh, torch.tensor([0]), None)


def test_to_float_image_scales_to_unit_range() -> None:
    out = to_float_image(tv_tensors.Image(torch.tensor([[[0, 255]]], dtype=torch.uint8).expand(3, 1, 2)))
    assert out.dtype == torch.float32 and type(out) is torch.Tensor and out[:, 0].tolist() == [[0.0, 1.0]] * 3
