"""docs/config.md documents every key; the Detectron2 migration table covers every key hint."""

from __future__ import annotations

import re
from pathlib import Path

from detforge.config import DETECTRON2_KEYS, Config, all_keys

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_key_is_documented_with_its_default() -> None:
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    defaults = Config().model_dump(mode="json")
    for key in all_keys():
        section, leaf = key.split(".")
        rows = [line for line in sections[section].splitlines() if line.startswith(f"| `{leaf}` |")]
        assert rows, f"{key} is not documented in docs/config.md"
        shown = rows[0].split("|")[2].strip().strip("`")
        value = defaults[section][leaf]
        expected = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        assert shown == expected, f"{key}: docs say {shown}, default is {expected}"


def test_migration_table_names_every_detectron2_key() -> None:
    text = (DOCS / "detectron2-migration.md").read_text(encoding="utf-8")
    for d2_key, target in DETECTRON2_KEYS.items():
        assert d2_key.split(".")[-1] in text, d2_key
        if target:
            assert f"`{target}`" in text, target
