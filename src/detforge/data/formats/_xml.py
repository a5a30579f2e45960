"""Safe XML reading for the XML dataset formats (VOC, CVAT), with the source line of every element.

Parsing goes through defusedxml with DTDs, entity declarations and external references forbidden,
so an XML bomb ("billion laughs") or an external-entity file is refused before anything is expanded
or fetched. Every failure is a DatasetError naming the file (and line/column where expat knows it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from detforge.errors import DatasetError
from detforge.structures import Location

__all__ = ["XmlDocument", "child_text", "format_number", "parse_number", "parse_xml"]

_CHUNK = 1 << 20
_POSITION_SUFFIX = re.compile(r":\s*line \d+, column \d+\s*$")


class _LineRecorder:
    """An ElementTree parser target that remembers the 1-based line where each element starts."""

    def __init__(self) -> None:
        self._builder = TreeBuilder()
        self.lines: dict[int, int] = {}
        self.elements: list[Element] = []  # keeps ids in `lines` valid for the document's lifetime
        self.expat: Any = None

    def start(self, tag: str, attrib: dict[str, str]) -> Element:
        elem = self._builder.start(tag, attrib)
        if self.expat is not None:
            self.lines[id(elem)] = int(self.expat.CurrentLineNumber)
        self.elements.append(elem)
        return elem

    def end(self, tag: str) -> Element:
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def close(self) -> Element:
        return self._builder.close()


@dataclass(frozen=True)
class XmlDocument:
    """A parsed XML file: its `root` element and the 1-based source line of each element."""

    path: Path
    root: Element
    _lines: dict[int, int] = field(repr=False)
    _elements: list[Element] = field(repr=False)

    def line_of(self, elem: Element) -> int | None:
        """The 1-based line where `elem`'s start tag begins (None for an element not from this file)."""
        return self._lines.get(id(elem))

    def location(self, elem: Element | None = None) -> Location:
        """A Location naming this file and, when given, the line of `elem`."""
        return Location(str(self.path), self.line_of(elem) if elem is not None else None)


def parse_xml(path: Path) -> XmlDocument:
    """Parse an XML file safely; DatasetError naming the file (line, column) if it is unsafe or malformed.

    DTDs (hence entity definitions such as the "billion laughs" bomb) and external references are
    refused without being expanded; time and memory stay proportional to the file's size.
    """
    recorder = _LineRecorder()
    parser = DefusedXMLParser(target=recorder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    expat = parser.parser
    recorder.expat = expat
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                parser.feed(chunk)
        root = parser.close()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read XML file ({exc.strerror or exc})") from None
    except DefusedXmlException as exc:
        line = int(expat.CurrentLineNumber)
        raise DatasetError(
            f"{path}:{line}: refusing unsafe XML ({type(exc).__name__}: {exc}); DTDs, entity declarations "
            "and external references are not allowed in annotation files"
        ) from None
    except ParseError as exc:
        line, column = exc.position
        reason = _POSITION_SUFFIX.sub("", str(exc))
        raise DatasetError(f"{path}: malformed XML at line {line}, column {column + 1}: {reason}") from None
    if not isinstance(root, Element):
        raise DatasetError(f"{path}: no XML root element")
    return XmlDocument(path, root, recorder.lines, recorder.elements)


def child_text(elem: Element, tag: str) -> str | None:
    """The stripped text of the first child `tag` of `elem`; None when the child is absent."""
    child = elem.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


def parse_number(text: str | None) -> float | None:
    """A finite-or-not float from text such as "12", "5.5", " 3 "; None when absent or not a number."""
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def format_number(value: float) -> str:
    """An integer string when `value` is integral (after rounding to 2 decimals), else up to 2 decimals."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
