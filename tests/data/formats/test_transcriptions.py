"""Transcriptions (`Annotation.text`): read where each labelling tool keeps them, chosen in one place, written back."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import detforge
from detforge.cli import main
from detforge.data.dataset import Dataset
from detforge.data.formats import load_dataset, write_dataset
from detforge.errors import DatasetError
from detforge.structures import Annotation, Categories, ImageRecord

FIXTURES = Path(__file__).parents[2] / "fixtures" / "formats"


def _image(path: Path, size: tuple[int, int] = (200, 100)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(path)
    return path


def _texts(ds: Dataset) -> list[str | None]:
    return [a.text for a in sorted(ds.annotations, key=lambda a: (a.image_id, a.bbox))]


# --- CVAT for images 1.1 XML ---------------------------------------------------------------------------------

_CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>pages</name><labels>
    <label><name>task_number</name><attributes>
      <attribute><name>text</name><mutable>False</mutable><input_type>text</input_type>
        <default_value></default_value><values></values></attribute>
    </attributes></label>
    <label><name>figure</name></label>
  </labels></task></meta>
  <image id="0" name="page1.png" width="200" height="100">
    <box label="task_number" occluded="0" xtl="10" ytl="10" xbr="60" ybr="30" z_order="0">
      <attribute name="text">3.14</attribute>
    </box>
    <box label="task_number" occluded="0" xtl="10" ytl="50" xbr="60" ybr="70" z_order="0">
      <attribute name="text"></attribute>
    </box>
    <polygon label="task_number" occluded="0" points="100,10;150,10;150,40;100,40" z_order="0">
      <attribute name="text">  2.7 </attribute>
    </polygon>
    <box label="figure" occluded="0" xtl="120" ytl="60" xbr="190" ybr="95" z_order="0"/>
  </image>
</annotations>
"""


def test_cvat_text_attribute_is_read(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_text(_CVAT, encoding="utf-8")
    _image(tmp_path / "images" / "page1.png")
    ds = load_dataset(tmp_path)
    assert ds.format == "cvat" and ds.text_attribute == "text"
    assert ds.text_fields == ("text",)
    # (10,10) "3.14"; (10,50) empty -> no text; polygon trimmed "2.7"; the figure has no attribute
    assert _texts(ds) == ["3.14", None, "2.7", None]
    assert ("text", "3.14") in ds.annotations[0].attributes  # the raw attribute stays


def test_cvat_fixture_by_another_team_text_input_attribute(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "cvat_xml", tmp_path / "cvat")
    ds = load_dataset(tmp_path / "cvat")
    # a3 is the one attribute declared with <input_type>text</input_type>
    assert ds.text_attribute == "a3"
    assert [a.text for a in ds.annotations] == ["0003"]
    picked = load_dataset(tmp_path / "cvat", text_attribute="a2")
    assert picked.text_attribute == "a2" and [a.text for a in picked.annotations] == ["v3"]
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "cvat", text_attribute="number")
    message = str(err.value)
    assert "'number'" in message and "'a1'" in message and "'a3'" in message and "'occluded'" in message


# --- COCO (plain, and CVAT's COCO 1.0 export) --------------------------------------------------------------


def _coco(root: Path, attributes: list[dict[str, Any] | None]) -> Path:
    _image(root / "images" / "a.png")
    anns = []
    for i, attrs in enumerate(attributes, start=1):
        ann: dict[str, Any] = {
            "id": i, "image_id": 1, "category_id": 1, "bbox": [10.0 * i, 10, 20, 10], "area": 200,
            "segmentation": [], "iscrowd": 0,
        }  # fmt: skip
        if attrs is not None:
            ann["attributes"] = attrs
        anns.append(ann)
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}],
        "categories": [{"id": 1, "name": "task_number"}],
        "annotations": anns,
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_default.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_coco_attributes_text_cvat_coco_export(tmp_path: Path) -> None:
    root = _coco(tmp_path, [{"occluded": False, "text": "1.5"}, {"occluded": False, "text": 12}, None])
    ds = load_dataset(root)
    assert ds.format == "coco" and ds.text_attribute == "text"
    assert _texts(ds) == ["1.5", "12", None]


def test_coco_without_text_attribute_has_no_text(tmp_path: Path) -> None:
    ds = load_dataset(_coco(tmp_path, [{"occluded": False}, None]))
    assert ds.text_attribute is None and _texts(ds) == [None, None] and not ds.has_text
    assert not [p for p in ds.problems if p.code.startswith("text.")]


def test_ambiguous_candidates_are_not_guessed(tmp_path: Path) -> None:
    root = _coco(tmp_path, [{"text": "1", "Transcription": "one"}, {"text": "2"}])
    ds = load_dataset(root)
    assert ds.text_attribute is None and _texts(ds) == [None, None]
    (problem,) = [p for p in ds.problems if p.code == "text.ambiguous"]
    assert problem.severity == "warning"
    assert "'Transcription' (1 boxes)" in problem.message and "'text' (2 boxes)" in problem.message
    assert "--text-attribute NAME" in problem.message
    picked = load_dataset(root, text_attribute="Transcription")
    assert picked.text_attribute == "Transcription" and _texts(picked) == ["one", None]
    assert not [p for p in picked.problems if p.code == "text.ambiguous"]


def test_any_attribute_can_be_named(tmp_path: Path) -> None:
    ds = load_dataset(_coco(tmp_path, [{"number": "4.1"}, {"number": ""}]), text_attribute="number")
    assert ds.text_attribute == "number" and _texts(ds) == ["4.1", None]


def test_whitespace_only_text_is_kept_for_check(tmp_path: Path) -> None:
    ds = load_dataset(_coco(tmp_path, [{"text": "   "}, {"text": " 7 "}]))
    assert _texts(ds) == ["   ", "7"]


# --- Label Studio (OCR template) -----------------------------------------------------------------------------


def _ls_region(
    rid: str, x: float, y: float, label: str, text: list[str] | None, *, split: bool
) -> list[dict[str, Any]]:
    geometry = {"x": x, "y": y, "width": 25.0, "height": 20.0, "rotation": 0}
    common = {"id": rid, "to_name": "image", "original_width": 200, "original_height": 100, "image_rotation": 0}
    if split:  # the OCR template: <Rectangle name="bbox"> + <Labels name="label"> + <TextArea name="transcription">
        results = [
            {**common, "from_name": "bbox", "type": "rectangle", "value": geometry},
            {**common, "from_name": "label", "type": "labels", "value": {**geometry, "labels": [label]}},
        ]
    else:
        value = {**geometry, "rectanglelabels": [label]}
        results = [{**common, "from_name": "label", "type": "rectanglelabels", "value": value}]
    if text is not None:
        results.append(
            {**common, "from_name": "transcription", "type": "textarea", "value": {**geometry, "text": text}}
        )
    return results


def _labelstudio(root: Path, split: bool = True) -> Path:
    _image(root / "page.png")
    result = (
        _ls_region("a1", 5, 10, "task_number", ["3.14"], split=split)
        + _ls_region("b2", 50, 10, "task_number", ["1", "2"], split=split)
        + _ls_region("c3", 5, 60, "task_number", None, split=split)
    )
    task = {"id": 7, "data": {"ocr": "/data/upload/1/0a1b2c3d-page.png"}, "annotations": [{"id": 1, "result": result}]}
    (root / "export.json").write_text(json.dumps([task]), encoding="utf-8")
    return root


@pytest.mark.parametrize("split", [True, False], ids=["rectangle+labels", "rectanglelabels"])
def test_labelstudio_per_region_textarea(tmp_path: Path, split: bool) -> None:
    ds = load_dataset(_labelstudio(tmp_path, split))
    assert ds.format == "labelstudio" and ds.text_attribute == "transcription"
    assert ds.text_fields == ("transcription",)
    by_corner = {(round(a.bbox[0]), round(a.bbox[1])): a.text for a in ds.annotations}
    assert by_corner == {(10, 10): "3.14", (100, 10): "1\n2", (10, 60): None}
    assert not [p for p in ds.problems if "textarea" in p.message]  # used, not "ignored"


def test_labelstudio_textarea_of_whole_image_is_not_a_transcription(tmp_path: Path) -> None:
    root = _labelstudio(tmp_path)
    tasks = json.loads((root / "export.json").read_text())
    note = {"id": "note", "from_name": "notes", "to_name": "image", "type": "textarea", "value": {"text": ["blurry"]}}
    tasks[0]["annotations"][0]["result"].append(note)
    (root / "export.json").write_text(json.dumps(tasks))
    ds = load_dataset(root)
    assert ds.text_attribute == "transcription"
    assert any(p.code == "result.ignored" and "textarea" in p.message for p in ds.problems)


# --- LabelMe ------------------------------------------------------------------------------------------------


def _labelme(root: Path, descriptions: list[str | None]) -> Path:
    _image(root / "page.png")
    shapes = []
    for i, description in enumerate(descriptions):
        shape: dict[str, Any] = {
            "label": "task_number", "points": [[10 + 40 * i, 10], [40 + 40 * i, 30]], "group_id": None,
            "shape_type": "rectangle", "flags": {},
        }  # fmt: skip
        if description is not None:
            shape["description"] = description
        shapes.append(shape)
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "page.png", "imageData": None,
           "imageHeight": 100, "imageWidth": 200}  # fmt: skip
    (root / "page.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_labelme_description(tmp_path: Path) -> None:
    ds = load_dataset(_labelme(tmp_path, ["12.3", "", None, "  "]))
    assert ds.format == "labelme" and ds.text_attribute == "description"
    assert _texts(ds) == ["12.3", None, None, "  "]


# --- Writers: round trips -------------------------------------------------------------------------------------


def _made(root: Path) -> Dataset:
    path = _image(root / "src" / "p.png")
    cats = Categories.from_names(["task_number", "figure"])
    anns = (
        Annotation(1, 1, 1, (10.0, 10.0, 60.0, 30.0), text="3.14"),
        Annotation(2, 1, 1, (10.0, 50.0, 60.0, 70.0), text="x = 2\u00b2"),
        Annotation(3, 1, 2, (100.0, 50.0, 190.0, 95.0)),
        Annotation(4, 1, 1, (100.0, 10.0, 150.0, 40.0), attributes=(("occluded", "true"),), text="\u0416 7"),
    )
    return Dataset((ImageRecord(1, "p.png", path, 200, 100, "train"),), anns, cats, root / "src", "coco")


@pytest.mark.parametrize("fmt", ["coco", "voc"])
def test_writer_round_trip_keeps_text(tmp_path: Path, fmt: str) -> None:
    original = _made(tmp_path)
    back = load_dataset(write_dataset(original, tmp_path / fmt, fmt), format=fmt)
    assert back.text_attribute == "text"
    assert _texts(back) == _texts(original) == ["3.14", "x = 2\u00b2", "\u0416 7", None]
    again = load_dataset(write_dataset(back, tmp_path / f"{fmt}2", fmt), format=fmt)
    assert _texts(again) == _texts(original)
    occluded = next(a for a in again.annotations if a.text == "\u0416 7")
    assert ("occluded", "true") in occluded.attributes


def test_coco_writes_attributes_text(tmp_path: Path) -> None:
    out = write_dataset(_made(tmp_path), tmp_path / "coco", "coco")
    doc = json.loads((out / "annotations" / "instances_train.json").read_text(encoding="utf-8"))
    attrs = [a.get("attributes") for a in doc["annotations"]]
    assert attrs == [{"text": "3.14"}, {"text": "x = 2\u00b2"}, None, {"occluded": "true", "text": "\u0416 7"}]


def test_source_attribute_is_renamed_not_duplicated(tmp_path: Path) -> None:
    """LabelMe `description` -> COCO: one `text` attribute, so the result is not ambiguous."""
    ds = load_dataset(_labelme(tmp_path / "lm", ["12.3", "", "4"]))
    back = load_dataset(write_dataset(ds, tmp_path / "coco", "coco"))
    assert back.text_attribute == "text" and _texts(back) == ["12.3", None, "4"]
    assert all("description" not in dict(a.attributes) for a in back.annotations)
    assert not [p for p in back.problems if p.code == "text.ambiguous"]


def test_labelstudio_and_cvat_to_coco_and_voc(tmp_path: Path) -> None:
    ls = load_dataset(_labelstudio(tmp_path / "ls"))
    (tmp_path / "cvat").mkdir()
    (tmp_path / "cvat" / "annotations.xml").write_text(_CVAT, encoding="utf-8")
    _image(tmp_path / "cvat" / "images" / "page1.png")
    cvat = load_dataset(tmp_path / "cvat")
    for name, ds in (("ls", ls), ("cvat", cvat)):
        for fmt in ("coco", "voc"):
            back = load_dataset(write_dataset(ds, tmp_path / f"{name}_{fmt}", fmt), format=fmt)
            assert _texts(back) == _texts(ds), (name, fmt)


def test_yolo_cannot_hold_text_and_says_how_many_are_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        write_dataset(_made(tmp_path), tmp_path / "yolo", "yolo")
    assert "yolo cannot hold transcriptions: the text of 3 box(es) is not written" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        write_dataset(_made(tmp_path), tmp_path / "coco", "coco")
    assert "transcriptions" not in caplog.text


# --- API and CLI ----------------------------------------------------------------------------------------------


def test_api_verbs_take_text_attribute(tmp_path: Path) -> None:
    root = _coco(tmp_path / "in", [{"text": "1", "transcription": "one"}])
    out = detforge.convert(root, tmp_path / "out", to="voc", text_attribute="transcription")
    back = load_dataset(out, text_attribute="transcription")  # both attributes kept as they were: still a choice
    assert _texts(back) == ["one"] and dict(back.annotations[0].attributes)["text"] == "1"
    ds = load_dataset(root)
    assert _texts(ds) == [None]
    out2 = detforge.convert(ds, tmp_path / "out2", to="coco", text_attribute="text")  # a Dataset is re-read
    assert _texts(load_dataset(out2, text_attribute="text")) == ["1"]
    with pytest.raises(DatasetError, match="'nope'"):
        detforge.convert(root, tmp_path / "out3", to="coco", text_attribute="nope")
    assert not (tmp_path / "out3").exists()


def test_cli_text_attribute_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _coco(tmp_path / "in", [{"text": "1", "transcription": "one"}])
    assert main(["data", "convert", str(root), str(tmp_path / "out"), "--to", "coco", "--text-attribute", "text"]) == 0
    assert _texts(load_dataset(tmp_path / "out", text_attribute="text")) == ["1"]
    assert main(["data", "convert", str(root), str(tmp_path / "vague"), "--to", "coco"]) == 0
    assert _texts(load_dataset(tmp_path / "vague", text_attribute="transcription")) == ["one"]
    code = main(["data", "convert", str(root), str(tmp_path / "bad"), "--to", "coco", "--text-attribute", "nope"])
    assert code != 0
    err = capsys.readouterr().err
    assert "'nope'" in err and "'transcription'" in err and "Traceback" not in err


def test_cvat_writer_round_trip_declares_text_attribute(tmp_path: Path) -> None:
    original = _made(tmp_path)
    out = write_dataset(original, tmp_path / "cvat", "cvat")
    xml = (out / "annotations.xml").read_text(encoding="utf-8")
    assert "<input_type>text</input_type>" in xml and '<attribute name="text">3.14</attribute>' in xml
    back = load_dataset(out)
    assert back.format == "cvat" and back.text_attribute == "text" and back.text_fields == ("text",)
    assert _texts(back) == _texts(original)
    assert back.categories.names == ("task_number", "figure") and back.subsets == ("train",)
    occluded = next(a for a in back.annotations if a.text == "\u0416 7")
    assert ("occluded", "1") in occluded.attributes
    # and through CVAT again, from a CVAT file by hand with an empty value and a polygon
    (tmp_path / "hand").mkdir()
    (tmp_path / "hand" / "annotations.xml").write_text(_CVAT, encoding="utf-8")
    _image(tmp_path / "hand" / "images" / "page1.png")
    hand = load_dataset(tmp_path / "hand")
    again = load_dataset(write_dataset(hand, tmp_path / "cvat2", "cvat"))
    assert _texts(again) == _texts(hand) and [a.bbox for a in again.annotations] == [a.bbox for a in hand.annotations]
    assert sum(a.segmentation is not None for a in again.annotations) == 1


def test_labelstudio_writer_round_trip_ocr_template(tmp_path: Path) -> None:
    original = _made(tmp_path)
    out = write_dataset(original, tmp_path / "ls", "labelstudio")
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    results = tasks[0]["annotations"][0]["result"]
    textareas = [r for r in results if r["type"] == "textarea"]
    assert {r["from_name"] for r in textareas} == {"transcription"}
    region_ids = {r["id"] for r in results if r["type"] == "rectanglelabels"}
    assert {r["id"] for r in textareas} < region_ids and len(textareas) == 3
    config = (out / "label_config.xml").read_text(encoding="utf-8")
    assert '<TextArea name="transcription"' in config and 'perRegion="true"' in config
    back = load_dataset(out)
    assert back.format == "labelstudio" and back.text_attribute == "transcription"
    assert _texts(back) == _texts(original)
    assert back.categories.names == ("task_number", "figure")  # from label_config.xml, "figure" kept in place
    again = load_dataset(write_dataset(back, tmp_path / "ls2", "labelstudio"))
    assert _texts(again) == _texts(original) and [im.file_name for im in again.images] == ["train/p.png"]


def test_labelstudio_writer_keeps_odd_file_names_and_multiline_text(tmp_path: Path) -> None:
    path = _image(tmp_path / "src" / "page #2 é.png")
    cats = Categories.from_names(["n"])
    anns = (Annotation(1, 1, 1, (20.0, 10.0, 60.0, 30.0), text="1\n2"),)
    ds = Dataset((ImageRecord(1, "page #2 é.png", path, 200, 100),), anns, cats, tmp_path / "src", "coco")
    back = load_dataset(write_dataset(ds, tmp_path / "ls", "labelstudio"))
    assert [im.file_name for im in back.images] == ["page #2 é.png"] and back.images[0].path.is_file()
    assert _texts(back) == ["1\n2"]
    assert back.annotations[0].bbox == pytest.approx((20.0, 10.0, 60.0, 30.0), abs=1e-3)


def test_labelme_writer_round_trip_description(tmp_path: Path) -> None:
    original = _made(tmp_path)
    out = write_dataset(original, tmp_path / "lm", "labelme")
    doc = json.loads((out / "train" / "p.json").read_text(encoding="utf-8"))
    assert [s["description"] for s in doc["shapes"]] == ["3.14", "x = 2\u00b2", "", "\u0416 7"]
    assert (out / "train" / "p.png").is_file() and (out / "labels.txt").read_text() == "task_number\nfigure\n"
    back = load_dataset(out)
    assert back.format == "labelme" and back.text_attribute == "description"
    assert _texts(back) == _texts(original)
    assert back.categories.names == ("task_number", "figure") and back.subsets == ("train",)
    again = load_dataset(write_dataset(back, tmp_path / "lm2", "labelme"))
    assert _texts(again) == _texts(original) and [im.file_name for im in again.images] == ["train/p.png"]


def test_every_text_format_converts_to_every_other(tmp_path: Path) -> None:
    from detforge.data.formats import TEXT_WRITE_FORMATS

    original = _made(tmp_path)
    for a in TEXT_WRITE_FORMATS:
        first = load_dataset(write_dataset(original, tmp_path / a, a), format=a)
        for b in TEXT_WRITE_FORMATS:
            second = load_dataset(write_dataset(first, tmp_path / f"{a}_{b}", b), format=b)
            assert _texts(second) == _texts(original), f"{a} -> {b}"
            assert second.text_attribute is not None


def test_split_keeps_texts_and_every_reading_verb_has_the_flag(tmp_path: Path) -> None:
    root = _coco(tmp_path / "in", [{"text": str(i)} for i in range(1, 6)])
    (out,) = detforge.split(root, out=tmp_path / "split", ratios=(0.5, 0.5), seed=1)
    assert sorted(t for t in _texts(load_dataset(out)) if t is not None) == ["1", "2", "3", "4", "5"]
    for argv in (["check", str(root)], ["stats", str(root)], ["show", str(root), "--out", str(tmp_path / "show")]):
        assert main(["data", *argv, "--text-attribute", "text"]) in (0, 1)
    assert main(["data", "stats", str(root), "--text-attribute", "missing"]) != 0


def test_choosing_again_replaces_the_earlier_choice(tmp_path: Path) -> None:
    from detforge.data.transcriptions import apply_text_attribute

    ds = load_dataset(_coco(tmp_path, [{"text": "1", "note": "a"}, {"text": "2"}]))
    assert ds.text_attribute == "text" and _texts(ds) == ["1", "2"]
    again = apply_text_attribute(ds, "note")
    assert again.text_attribute == "note" and _texts(again) == ["a", None]
    made = _made(tmp_path)  # text set in Python, no attribute: kept when nothing is chosen
    assert _texts(apply_text_attribute(made)) == _texts(made)
