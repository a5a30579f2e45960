"""Disk full during a checkpoint save: a clear OSError, no temp file left, the previous checkpoint loadable."""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.engine import checkpoint
from detforge.engine.checkpoint import load_checkpoint, load_resume_checkpoint, save_last


def _state(iteration: int) -> dict[str, Any]:
    return {"iteration": iteration, "model": {"w": torch.full((64,), float(iteration))}}


class _FullDisk(io.FileIO):
    """A file whose writes fail as on a full disk after `room` bytes."""

    room = 100

    def write(self, data: Any) -> int:
        if len(memoryview(data)) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.name))
        return super().write(data)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("saves_before", [1, 2])
def test_disk_full_during_save_keeps_the_previous_checkpoint(
    saves_before: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, saves_before + 1):
        save_last(_state(i), tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    full_disk = lambda path, mode="rb": _FullDisk(path, mode.replace("b", ""))  # noqa: E731
    monkeypatch.setattr(checkpoint, "open", full_disk, raising=False)
    with pytest.raises(OSError) as info:
        save_last(_state(99), tmp_path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert "No space left" in str(info.value) and "last.pt" in str(info.value)  # says what and where
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp file left behind
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == saves_before
    state, path = load_resume_checkpoint(tmp_path)
    assert (state["iteration"], path.name) == (saves_before, "last.pt")
    assert torch.equal(state["model"]["w"], torch.full((64,), float(saves_before)))
