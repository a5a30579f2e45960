"""Drawing boxes, tags, polygons and masks: colours, placement, inputs left untouched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detforge.structures import Polygons
from detforge.visualization import PALETTE, color_for, color_for_name, draw_boxes, format_label, place_tag
from detforge.visualization.colors import contrast_ratio, text_color_for
from detforge.visualization.draw import FILL_ALPHA, default_line_width

BLACK = (0, 0, 0)


def _px(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(image)[y, x])  # type: ignore[return-value]


def test_box_edges_have_the_class_colour_and_the_inside_is_untouched() -> None:
    image = Image.new("RGB", (200, 150), BLACK)
    out = draw_boxes(image, [(20, 30, 120, 100)], [""], class_ids=[2], line_width=2)
    colour = color_for(2)
    for x, y in [(20, 60), (21, 60), (120, 60), (119, 60), (70, 30), (70, 31), (70, 100)]:
        assert _px(out, x, y) == colour, (x, y)
    assert _px(out, 22, 60) == BLACK  # width 2: the third pixel inwards is not drawn
    assert _px(out, 70, 65) == BLACK
    assert _px(out, 19, 60) == BLACK
    assert out.mode == "RGB" and out.size == (200, 150)


def test_input_image_is_not_modified() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    before = np.asarray(image).copy()
    masks = np.zeros((1, 120, 160), dtype=bool)
    masks[0, 10:50, 10:50] = True
    out = draw_boxes(image, np.array([[5.0, 5.0, 60.0, 60.0]]), ["cat"], scores=[0.9], masks=masks)
    assert out is not image
    np.testing.assert_array_equal(np.asarray(image), before)
    assert not np.array_equal(np.asarray(out), before)


def test_same_class_id_gives_same_colour_and_palette_cycles() -> None:
    assert color_for(0) == PALETTE[0]
    assert color_for(len(PALETTE) + 3) == PALETTE[3]
    assert len(set(PALETTE)) == len(PALETTE) >= 12
    assert color_for_name("person") == color_for_name("person")


def test_without_class_ids_colour_depends_on_the_label_only() -> None:
    image = Image.new("RGB", (100, 100), BLACK)
    a = draw_boxes(image, [(10, 40, 90, 90)], ["person"], line_width=1)
    b = draw_boxes(image, [(10, 40, 90, 90), (50, 50, 60, 60)], ["person", "car"], line_width=1)
    assert _px(a, 10, 70) == _px(b, 10, 70) == color_for_name("person")


@pytest.mark.parametrize("colour", PALETTE)
def test_tag_text_colour_is_readable_on_every_palette_colour(colour: tuple[int, int, int]) -> None:
    assert contrast_ratio(colour, text_color_for(colour)) >= 4.5


def test_text_colour_is_black_on_light_and_white_on_dark() -> None:
    assert text_color_for((0xF0, 0xE4, 0x42)) == (0, 0, 0)  # yellow
    assert text_color_for((0x33, 0x22, 0x88)) == (255, 255, 255)  # indigo


def test_label_text_has_two_decimal_score() -> None:
    assert format_label("cat", 0.8712) == "cat 0.87"
    assert format_label("cat", None) == "cat"
    assert format_label("", 0.5) == "0.50"


@pytest.mark.parametrize(
    ("box", "tag", "image", "expected"),
    [
        ((50, 40, 90, 90), (30, 12), (200, 100), (50, 28, 80, 40)),  # room above: above the box
        ((50, 5, 90, 90), (30, 12), (200, 100), (50, 5, 80, 17)),  # no room above: inside the top edge
        ((180, 0, 199, 30), (60, 12), (200, 100), (140, 0, 200, 12)),  # right border: shifted left
        ((-20, -20, 10, 10), (30, 12), (200, 100), (0, 0, 30, 12)),  # box partly outside: clamped
        ((10, 95, 50, 140), (30, 12), (200, 100), (10, 83, 40, 95)),  # bottom border
        ((10, 10, 20, 20), (300, 12), (200, 100), (0, 10, 300, 22)),  # wider than the image: starts at 0
    ],
)
def test_tags_are_placed_inside_the_image(
    box: tuple[int, int, int, int], tag: tuple[int, int], image: tuple[int, int], expected: tuple[int, int, int, int]
) -> None:
    assert place_tag(box, tag, image) == expected


def test_tag_at_the_top_right_corner_is_drawn_inside_with_its_text() -> None:
    image = Image.new("RGB", (200, 100), BLACK)
    out = np.asarray(draw_boxes(image, [(170, 0, 199, 40)], ["a long label"], class_ids=[4], line_width=1))
    fill = np.all(out == np.array(color_for(4)), axis=-1)
    ys, xs = np.nonzero(fill[:, :165])  # left of the box: only the tag has the class colour there
    assert ys.min() == 0 and xs.min() < 150  # the tag starts at the top and extends left of the box ...
    assert fill[: ys.max() + 1, 199].all()  # ... and reaches the right border
    tag = out[: ys.max() + 1, xs.min() : 200]
    text = ~np.all(tag == np.array(color_for(4)), axis=-1)  # inside the tag, what is not fill is text
    assert text.sum() > 20
    assert text[:, : text.shape[1] // 2].any() and text[:, text.shape[1] // 2 :].any()
    assert tag.reshape(-1, 3).max(axis=0).min() >= 240  # (anti-aliased) white text on the dark blue tag


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_grayscale_palette_and_rgba_inputs_are_converted(mode: str) -> None:
    image = Image.new("RGB", (64, 48), (120, 120, 120)).convert(mode)
    out = draw_boxes(image, [(4, 4, 40, 40)], ["x"], class_ids=[1], line_width=1)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert _px(out, 4, 30) == color_for(1)
    assert image.mode == mode


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    out = draw_boxes(image, np.zeros((0, 4)), [])
    assert _px(out, 16, 16) == (255, 255, 255)


def test_masks_are_translucent_with_an_outline() -> None:
    grey = (100, 100, 100)
    image = Image.new("RGB", (80, 60), grey)
    masks = np.zeros((1, 60, 80), dtype=bool)
    masks[0, 20:40, 30:60] = True
    out = draw_boxes(image, [(30, 20, 60, 40)], [""], class_ids=[0], masks=masks, line_width=1)
    colour = np.array(color_for(0))
    expected = np.round(np.array(grey) * (1 - FILL_ALPHA) + colour * FILL_ALPHA)
    np.testing.assert_allclose(_px(out, 45, 30), expected, atol=2)
    assert _px(out, 30, 30) == color_for(0)  # mask edge (and box edge)
    assert _px(out, 10, 10) == grey


def test_polygons_are_filled_translucently() -> None:
    grey = (100, 100, 100)
    image = Image.new("RGB", (100, 100), grey)
    tri = Polygons(((10.0, 10.0, 90.0, 10.0, 50.0, 90.0),))
    out = draw_boxes(image, [(10, 10, 90, 90)], [""], class_ids=[4], polygons=[tri], line_width=1)
    inside = np.array(_px(out, 50, 30))
    expected = np.array(grey) * (1 - FILL_ALPHA) + np.array(color_for(4)) * FILL_ALPHA
    np.testing.assert_allclose(inside, expected, atol=2)
    assert _px(out, 20, 80) == grey  # inside the box, outside the triangle


def test_line_width_grows_with_image_size() -> None:
    assert default_line_width(100, 80) == 1
    assert default_line_width(640, 480) == 2
    assert default_line_width(4000, 3000) == 12
    big = Image.new("RGB", (2000, 1000), BLACK)
    out = draw_boxes(big, [(100, 100, 900, 900)], [""], class_ids=[0])
    lw = default_line_width(2000, 1000)
    assert _px(out, 100 + lw - 1, 500) == color_for(0)
    assert _px(out, 100 + lw, 500) == BLACK


def test_non_finite_boxes_are_skipped_and_empty_input_is_a_copy() -> None:
    image = Image.new("RGB", (50, 50), BLACK)
    out = draw_boxes(image, [(float("nan"), 0, 10, 10)], ["x"])
    assert np.asarray(out).max() == 0
    assert draw_boxes(image, [], []).size == (50, 50)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"boxes": [1, 2, 3, 4], "labels": ["a"]}, "boxes"),
        ({"boxes": [(0, 0, 5, 5)], "labels": []}, "labels"),
        ({"boxes": [(0, 0, 5, 5)], "labels": ["a"], "scores": [0.1, 0.2]}, "scores"),
        ({"boxes": [(0, 0, 5, 5)], "labels": ["a"], "masks": np.zeros((1, 5, 5), bool)}, "masks"),
        ({"boxes": [(0, 0, 5, 5)], "labels": ["a"], "line_width": 0}, "line_width"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        draw_boxes(Image.new("RGB", (20, 20)), **kwargs)  # type: ignore[arg-type]
