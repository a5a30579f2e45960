"""Safe XML parsing: bombs and external entities are refused quickly; errors name file, line, column."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.data.formats._xml import format_number, parse_number, parse_xml
from detforge.data.formats.cvat import read_cvat
from detforge.data.formats.voc import read_voc
from detforge.errors import DatasetError

Reader = Callable[[Path], object]

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<{root}><filename>&lol9;</filename></{root}>
"""


def _external_entity(secret: Path, root: str) -> str:
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE {root} [ <!ENTITY xxe SYSTEM "file://{secret}"> ]>\n'
        f"<{root}><filename>&xxe;</filename></{root}>\n"
    )


def _refused_quickly(call: Reader, path: Path) -> str:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as info:
            call(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 10 * 2**20
    return str(info.value)


READERS: list[tuple[Reader, str]] = [(parse_xml, "annotation"), (read_voc, "annotation"), (read_cvat, "annotations")]


@pytest.mark.parametrize("reader, root", READERS)
def test_billion_laughs_is_refused_fast_and_small(tmp_path: Path, reader: Reader, root: str) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(BILLION_LAUGHS.format(root=root))
    message = _refused_quickly(reader, bomb)
    assert str(bomb) in message
    assert "unsafe XML" in message
    assert ":2:" in message  # the DOCTYPE line


@pytest.mark.parametrize("reader, root", READERS)
def test_external_entity_to_local_file_is_refused(tmp_path: Path, reader: Reader, root: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = tmp_path / "xxe.xml"
    xml.write_text(_external_entity(secret, root))
    message = _refused_quickly(reader, xml)
    assert str(xml) in message
    assert "TOP-SECRET-CONTENT" not in message


def test_external_dtd_and_parameter_entities_are_refused(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY x "boom">')
    for i, text in enumerate(
        [
            f'<!DOCTYPE annotation SYSTEM "file://{dtd}">\n<annotation/>',
            f'<!DOCTYPE annotation [ <!ENTITY % p SYSTEM "file://{dtd}"> %p; ]>\n<annotation/>',
        ]
    ):
        xml = tmp_path / f"doc{i}.xml"
        xml.write_text(text)
        with pytest.raises(DatasetError, match="unsafe XML"):
            parse_xml(xml)


def test_undeclared_entity_is_a_syntax_error(tmp_path: Path) -> None:
    xml = tmp_path / "a.xml"
    xml.write_text("<annotation>\n  <filename>&xxe;</filename>\n</annotation>\n")
    with pytest.raises(DatasetError, match=r"a\.xml: malformed XML at line 2, column 13: undefined entity"):
        parse_xml(xml)


def test_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    xml = tmp_path / "broken.xml"
    xml.write_text("<annotation>\n  <object>\n    <name>cat</nam>\n  </object>\n</annotation>\n")
    with pytest.raises(DatasetError) as info:
        read_voc(xml)
    message = str(info.value)
    assert str(xml) in message
    assert "line 3, column 16" in message  # 1-based: the name in "</nam>"
    assert "mismatched tag" in message


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.xml: malformed XML at line 1"):
        parse_xml(empty)
    with pytest.raises(DatasetError, match=r"missing\.xml: cannot read XML file"):
        parse_xml(tmp_path / "missing.xml")


def test_source_lines_of_elements(tmp_path: Path) -> None:
    xml = tmp_path / "lines.xml"
    xml.write_text('<?xml version="1.0"?>\n<a>\n  <b x="1"\n     y="2">\n    <c/>\n  </b>\n  <d>text</d>\n</a>\n')
    doc = parse_xml(xml)
    lines = {elem.tag: doc.line_of(elem) for elem in doc.root.iter()}
    assert lines == {"a": 2, "b": 3, "c": 5, "d": 7}
    d = doc.root.find("d")
    assert d is not None
    assert str(doc.location(d)) == f"{xml}:7"
    assert doc.location().line is None


def test_non_ascii_and_declared_encoding(tmp_path: Path) -> None:
    xml = tmp_path / "latin.xml"
    xml.write_bytes('<?xml version="1.0" encoding="ISO-8859-1"?>\n<a><name>café</name></a>\n'.encode("latin-1"))
    doc = parse_xml(xml)
    assert doc.root.findtext("name") == "café"


def test_number_helpers() -> None:
    assert parse_number(" 5.5 ") == 5.5
    assert parse_number("12") == 12.0
    assert parse_number("abc") is None
    assert parse_number(None) is None
    assert [format_number(v) for v in (3.0, 5.5, 2.345, -0.001, 10.999, 0.1)] == ["3", "5.5", "2.35", "0", "11", "0.1"]
