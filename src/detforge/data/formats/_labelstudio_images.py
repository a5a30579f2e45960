"""Finding the image file a Label Studio task names, under the export's folder."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlparse

__all__ = ["ImageFinder"]

_UPLOAD_PREFIX = re.compile(r"^[0-9a-fA-F]{8}-(.+)$")
"""Label Studio's upload prefix: 8 hex digits and a dash before the original file name."""


class ImageFinder:
    """Resolves a task's image reference to a file under the export's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads: dict[str, Path] | None = None

    def _upload_index(self) -> dict[str, Path]:
        if self._uploads is None:
            folder = self.root / "media" / "upload"
            files = sorted(folder.rglob("*")) if folder.is_dir() else []
            self._uploads = {}
            for f in files:
                if f.is_file():
                    self._uploads.setdefault(f.name, f)
        return self._uploads

    def find(self, ref: str) -> tuple[str, Path]:
        """(file_name, path): the file found, else the original name under the export's folder."""
        parsed = urlparse(ref)
        query = parse_qs(parsed.query)
        raw = query["d"][0] if "d" in query else unquote(parsed.path)  # /data/local-files/?d=<path>
        if parsed.scheme in ("", "file") and raw:
            direct = Path(raw) if Path(raw).is_absolute() else self.root / raw
            if direct.is_file():
                return self._file_name(direct, raw), direct
        base = PurePosixPath(raw.replace("\\", "/")).name
        names = [base]
        if match := _UPLOAD_PREFIX.match(base):
            names.append(match.group(1))
        for name in names:
            for folder in (self.root, self.root / "images"):
                if (folder / name).is_file():
                    return self._file_name(folder / name, name), folder / name
            if name in self._upload_index():
                found = self._upload_index()[name]
                return self._file_name(found, name), found
        return names[-1], self.root / names[-1]

    def _file_name(self, path: Path, fallback: str) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return fallback
