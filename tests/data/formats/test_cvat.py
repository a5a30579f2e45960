"""CVAT for images 1.1 XML reader: Datumaro's task export and every reading rule on generated files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.data.formats import load_dataset
from detforge.data.formats.cvat import read_cvat
from detforge.errors import DatasetError
from detforge.structures import Polygons

TASK_META = """<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <labels>
        <label><name>car</name></label>
        <label><name>bus</name></label>
        <label><name>skel</name><type>skeleton</type></label>
        <label><name>joint</name><parent>skel</parent></label>
      </labels>
    </task>
  </meta>
"""


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _where(problem) -> tuple[str, str, int | None]:  # type: ignore[no-untyped-def]
    return problem.severity, problem.code, problem.location.line if problem.location else None


def test_datumaro_task_export(fixtures_dir: Path) -> None:
    root = fixtures_dir / "formats" / "cvat_xml"
    before = _digests(root)
    ds = load_dataset(root)
    assert ds.format == "cvat"
    assert ds.categories.names == ("label1", "label2")
    assert ds.categories.ids == (1, 2)
    assert [(im.id, im.file_name, im.width, im.height, im.subset) for im in ds.images] == [
        (1, "img0.jpg", 8, 8, None),
        (2, "img1.jpg", 10, 10, None),
    ]
    assert ds.images[0].path == root / "images" / "img0.jpg"
    (box,) = ds.annotations
    assert (box.image_id, box.category_id, box.bbox, box.segmentation) == (1, 1, (0.0, 2.0, 4.0, 4.0), None)
    assert dict(box.attributes) == {
        "a1": "true",
        "a2": "v3",
        "a3": "0003",
        "a4": "2.4",
        "occluded": "1",
        "z_order": "1",
    }
    assert box.source is not None and box.source.line == 44
    assert [_where(p) for p in ds.problems] == [
        ("warning", "shape.unsupported", 50),
        ("error", "label.missing", 53),
        ("warning", "shape.unsupported", 54),
    ]
    assert "polyline" in ds.problems[0].message and "img0.jpg" in ds.problems[0].message
    assert "points" in ds.problems[2].message and "img1.jpg" in ds.problems[2].message
    assert [p.image_id for p in ds.problems] == [1, 2, 2]
    assert _digests(root) == before


def test_boxes_polygons_rotation_and_labels(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "a.jpg", 100, 80)
    xml = _write(
        tmp_path / "annotations.xml",
        TASK_META
        + """  <image id="0" name="a.jpg" width="100" height="80">
    <box label="car" xtl="10.5" ytl="20" xbr="30" ybr="40.25" occluded="0" z_order="0" rotation="0.0">
      <attribute name="color">red</attribute>
    </box>
    <box label="car" xtl="1" ytl="2" xbr="3" ybr="4" rotation="15.5"/>
    <polygon label="bus" points="10,10;50.5,12;40,60" occluded="1"/>
    <polygon label="bus" points="10,10;50"/>
    <box label="truck" xtl="1" ytl="2" xbr="3" ybr="4"/>
    <box label="car" xtl="1" ytl="oops" xbr="3" ybr="4"/>
    <box label="car" xtl="5" ytl="6" xbr="7" ybr="8" rotation="360"/>
  </image>
</annotations>
""",
    )
    ds = read_cvat(xml)
    assert ds.categories.names == ("car", "bus", "skel")
    car, bus, unrotated = ds.annotations
    assert (car.category_id, car.bbox) == (1, (10.5, 20.0, 30.0, 40.25))
    assert car.attributes == (("color", "red"), ("occluded", "0"), ("z_order", "0"))
    assert bus.category_id == 2
    assert bus.segmentation == Polygons(((10.0, 10.0, 50.5, 12.0, 40.0, 60.0),))
    assert bus.bbox == (10.0, 10.0, 50.5, 60.0)
    assert unrotated.bbox == (5.0, 6.0, 7.0, 8.0)
    assert [_where(p) for p in ds.problems] == [
        ("error", "box.rotated", 17),
        ("error", "polygon.invalid", 19),
        ("error", "label.unknown", 20),
        ("error", "box.invalid", 21),
    ]
    rotated = ds.problems[0]
    assert rotated.location is not None and rotated.location.file == str(xml)
    assert "15.5" in rotated.message and "axis-aligned" in rotated.message
    assert "'truck'" in ds.problems[2].message


def test_unsupported_shapes_each_warn(tmp_path: Path) -> None:
    shapes = ["polyline", "points", "ellipse", "mask", "cuboid", "skeleton", "tag"]
    body = "".join(f'    <{s} label="car" points="1,1;2,2"/>\n' for s in shapes)
    xml = _write(
        tmp_path / "t.xml", TASK_META + f'  <image id="3" name="a.jpg" width="5" height="5">\n{body}  </image>\n'
    )
    xml.write_text(
        xml.read_text() + '  <track id="0" label="car"><box frame="0" xtl="1" ytl="1" xbr="2" ybr="2"/></track>\n'
    )
    xml.write_text(xml.read_text() + "</annotations>\n")
    ds = read_cvat(xml)
    assert ds.annotations == ()
    assert [p.code for p in ds.problems] == ["shape.unsupported"] * 8
    assert [p.location.line for p in ds.problems if p.location] == [22, *range(14, 21)]
    for problem, shape in zip(ds.problems[1:], shapes, strict=True):
        assert f"<{shape}>" in problem.message and "a.jpg" in problem.message
        assert problem.severity == "warning"


def test_project_export_subsets_and_image_paths(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    image_factory(tmp_path / "images" / "Train" / "a.jpg", 30, 20)
    image_factory(tmp_path / "images" / "b.jpg", 16, 12, exif_orientation=6)
    image_factory(tmp_path / "c.jpg", 7, 7)
    xml = _write(
        tmp_path / "annotations.xml",
        """<annotations>
  <meta><project><labels><label><name>z</name></label><label><name>a</name></label></labels></project></meta>
  <image id="5" name="a.jpg" subset="Train" width="30" height="20">
    <box label="a" xtl="1" ytl="1" xbr="2" ybr="2"/>
  </image>
  <image id="6" name="b.jpg" subset="default"><box label="z" xtl="1" ytl="1" xbr="2" ybr="2"/></image>
  <image id="7" name="c.jpg" subset="Validation" width="7" height="7"/>
</annotations>
""",
    )
    ds = read_cvat(tmp_path)
    assert ds.categories.names == ("z", "a")
    assert [(im.id, im.file_name, im.path, im.width, im.height, im.subset) for im in ds.images] == [
        (1, "a.jpg", tmp_path / "images" / "Train" / "a.jpg", 30, 20, "Train"),
        (2, "b.jpg", tmp_path / "images" / "b.jpg", 12, 16, None),
        (3, "c.jpg", tmp_path / "c.jpg", 7, 7, "Validation"),
    ]
    assert [a.category_id for a in ds.annotations] == [2, 1]
    assert ds.problems == ()
    assert ds.images[0].source is not None and ds.images[0].source.file == str(xml)


def test_task_subset_from_meta(tmp_path: Path) -> None:
    xml = _write(
        tmp_path / "task.xml",
        "<annotations><meta><task><subset>Test</subset><labels><label><name>x</name></label></labels></task></meta>"
        '<image id="0" name="a.jpg" width="4" height="4"/></annotations>',
    )
    assert [im.subset for im in read_cvat(xml).images] == ["Test"]


def test_missing_labels_fall_back_to_used_labels(tmp_path: Path) -> None:
    xml = _write(
        tmp_path / "a.xml",
        '<annotations>\n<image id="0" name="a.jpg" width="4" height="4">'
        '<box label="q" xtl="0" ytl="0" xbr="1" ybr="1"/><box label="b" xtl="0" ytl="0" xbr="1" ybr="1"/>'
        "</image>\n</annotations>\n",
    )
    ds = read_cvat(xml)
    assert ds.categories.names == ("b", "q")
    assert [a.category_id for a in ds.annotations] == [2, 1]
    assert [_where(p) for p in ds.problems] == [("warning", "cvat.no_labels", 1)]


def test_not_cvat(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"no CVAT \.xml file"):
        read_cvat(empty)
    voc = _write(tmp_path / "voc.xml", "<annotation><filename>a.jpg</filename></annotation>")
    with pytest.raises(DatasetError, match="expected CVAT's <annotations>"):
        read_cvat(voc)
    with pytest.raises(DatasetError, match="no CVAT <annotations>"):
        read_cvat(tmp_path)
