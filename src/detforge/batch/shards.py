"""Shards: the job's images cut into consecutive runs of `size`, each written as one JSON Lines file (one
result per line, in listing order) by an atomic rename, so a shard file exists whole or not at all."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError
from detforge.fileio import atomic_write_text

__all__ = ["SHARDS_DIR", "ShardPlan", "done_shards", "read_shard", "shard_path", "write_shard"]

SHARDS_DIR = "shards"
"""Folder of the shard files in the job's output folder."""

_NAME = re.compile(r"(\d{6,})\.jsonl")


@dataclass(frozen=True)
class ShardPlan:
    """`images` images in shards of `size`: shard i holds images [i * size, min((i + 1) * size, images))."""

    images: int
    size: int

    def __post_init__(self) -> None:
        if self.images < 0 or self.size < 1:
            raise ValueError(f"ShardPlan: expected images >= 0 and size >= 1, got {self.images}, {self.size}")

    @property
    def count(self) -> int:
        return -(-self.images // self.size)

    def span(self, shard: int) -> range:
        """Positions in the listing of the images of `shard`."""
        return range(shard * self.size, min((shard + 1) * self.size, self.images))


def shard_path(out: Path, shard: int) -> Path:
    return out / SHARDS_DIR / f"{shard:06d}.jsonl"


def write_shard(out: Path, shard: int, records: Sequence[dict[str, Any]]) -> Path:
    """Write one shard's records (JSON objects, one a line) atomically."""
    lines = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records)
    return atomic_write_text(shard_path(out, shard), lines)


def read_shard(out: Path, shard: int, expected: int) -> list[dict[str, Any]]:
    """The records of a shard; DetforgeError naming the file and line when it is unreadable or does not
    hold `expected` records (a shard is written whole: anything else means the folder was tampered with)."""
    path = shard_path(out, shard)
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise DetforgeError(
                    f"{path}:{number}: unreadable shard line ({exc}); delete the file to redo it"
                ) from None
    if len(records) != expected:
        raise DetforgeError(
            f"{path}: holds {len(records)} results, expected {expected}; delete the file to redo that shard"
        )
    return records


def done_shards(out: Path, plan: ShardPlan) -> set[int]:
    """The shards of `plan` whose file exists in `out`."""
    folder = out / SHARDS_DIR
    if not folder.is_dir():
        return set()
    found = {int(m.group(1)) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name))}
    return {s for s in found if s < plan.count}
