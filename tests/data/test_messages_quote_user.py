"""Problem messages quote the user's own ids and values (CVAT `id="0"`, COCO XYWH `bbox`), not detforge's."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from detforge.data.check import check_dataset
from detforge.data.formats.coco import read_coco
from detforge.data.formats.cvat import read_cvat

CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels><label><name>cat</name></label></labels></task></meta>
  <image id="0" name="a.jpg" width="40" height="30">
    <box label="cat" xtl="10" ytl="10" xbr="5" ybr="30"/>
    <box label="cat" xtl="30" ytl="5" xbr="50" ybr="15"/>
    <box label="dog" xtl="1" ytl="1" xbr="5" ybr="5"/>
  </image>
</annotations>
"""


def test_cvat_messages_name_the_users_image_id_and_line(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    (tmp_path / "annotations.xml").write_text(CVAT)
    report = check_dataset(read_cvat(tmp_path))
    lines = report.format_text().splitlines()
    degenerate = next(line for line in lines if "box.degenerate" in line)
    assert "annotations.xml:6" in degenerate
    assert '<box label="cat" xtl="10" ytl="10" xbr="5" ybr="30"> on image 0 (a.jpg)' in degenerate
    assert "image 1" not in degenerate and "(10.0, 10.0, 5.0, 30.0)" not in degenerate
    clipped = next(line for line in lines if "box.clipped" in line)
    assert "annotations.xml:7" in clipped and "image 0 (a.jpg)" in clipped and "image 1" not in clipped
    unknown = next(line for line in lines if "label.unknown" in line)
    assert "annotations.xml:8" in unknown and "image 0 (a.jpg)" in unknown and "image 1" not in unknown


def test_coco_messages_quote_the_bbox_as_written(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    doc = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 40, "height": 30}],
        "categories": [{"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 11, "image_id": 7, "category_id": 3, "bbox": [10, 10, -5, 20]},
            {"id": 12, "image_id": 7, "category_id": 3, "bbox": [30, 5, 20.5, 10]},
            {"id": 13, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4]},
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    dataset = read_coco(tmp_path)
    messages = {p.code: p.message for p in check_dataset(dataset).problems}
    assert messages["box.degenerate"].startswith("annotation 11 (image 7): bbox [10, 10, -5, 20] ")
    assert messages["box.clipped"].startswith("annotation 12 (image 7): bbox [30, 5, 20.5, 10] ")
    assert dataset.annotations[0].bbox == (10.0, 10.0, 5.0, 30.0)  # detforge's own XYXY is unchanged
    assert dataset.annotations[2].source is not None and dataset.annotations[2].source.item is None  # clean: shared


def test_coco_files_with_colliding_ids_are_reported_by_their_own_ids(tmp_path: Path) -> None:
    """Roboflow-style subsets all start at id 0: detforge offsets the later file, the messages do not."""
    (tmp_path / "annotations").mkdir()
    for subset in ("train", "val"):
        Image.new("RGB", (40, 30)).save(tmp_path / f"{subset}.jpg")
        doc = {
            "images": [{"id": 0, "file_name": f"{subset}.jpg", "width": 40, "height": 30}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [30, 5, 20, 10]}],
        }
        (tmp_path / "annotations" / f"instances_{subset}.json").write_text(json.dumps(doc))
    dataset = read_coco(tmp_path)
    assert sorted(im.id for im in dataset.images) == [0, 1]  # detforge's ids: the val file was offset
    lines = [line for line in check_dataset(dataset).format_text().splitlines() if "box.clipped" in line]
    assert len(lines) == 2
    assert all("annotation 0 (image 0): bbox [30, 5, 20, 10] extends past" in line for line in lines)
    assert not any("[image" in line for line in lines)
