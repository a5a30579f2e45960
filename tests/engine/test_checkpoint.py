"""Atomic checkpoint writes, weights-only loads, and the fallback past a damaged last.pt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from detforge.engine.checkpoint import (
    atomic_torch_save,
    load_checkpoint,
    load_resume_checkpoint,
    non_finite_tensors,
    save_last,
)
from detforge.errors import CheckpointError


def _state(iteration: int) -> dict[str, object]:
    return {"iteration": iteration, "model": {"w": torch.full((3,), float(iteration))}, "note": "plain"}


def test_save_last_keeps_the_previous_one(tmp_path: Path) -> None:
    save_last(_state(1), tmp_path)
    save_last(_state(2), tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 2
    assert load_checkpoint(tmp_path / "last.prev.pt")["iteration"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]


def test_non_finite_weights_are_never_written(tmp_path: Path) -> None:
    save_last(_state(1), tmp_path)
    bad = {"iteration": 2, "model": {"w": torch.tensor([1.0, float("nan")]), "n": torch.tensor([3])}}
    assert non_finite_tensors(bad["model"]) == ["w"]  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"refusing to write .* not finite"):
        save_last(bad, tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 1  # the last good checkpoint stays
    assert not (tmp_path / "last.prev.pt").exists()
    nested = {"model": {"w": torch.ones(1)}, "ema": {"module": {"w": torch.tensor([float("inf")])}}}
    with pytest.raises(CheckpointError, match="'ema'"):
        atomic_torch_save(nested, tmp_path / "best.pt", check_keys=("model", "ema"))
    assert not (tmp_path / "best.pt").exists()


def test_resume_falls_back_past_a_truncated_last(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_last(_state(1), tmp_path)
    save_last(_state(2), tmp_path)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / ".last.pt.new.99.tmp").write_bytes(data[:100])  # a partial temp file from a killed save
    with caplog.at_level(logging.WARNING):
        state, path = load_resume_checkpoint(tmp_path)
    assert (state["iteration"], path.name) == (1, "last.prev.pt")
    assert "skipping damaged checkpoint" in caplog.text and "last.pt" in caplog.text
    # a kill between the two renames: no last.pt at all, only last.prev.pt
    (tmp_path / "last.pt").unlink()
    assert load_resume_checkpoint(tmp_path)[0]["iteration"] == 1


def test_no_valid_checkpoint_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no valid checkpoint to resume from"):
        load_resume_checkpoint(tmp_path)
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a detforge training checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 50)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


class Payload:
    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (Path("/tmp/detforge-should-not-exist"),))


def test_loading_is_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the explicit weights_only=True still wins
    torch.save({"format": "detforge-train-checkpoint", "version": 1, "evil": Payload()}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "last.pt")
    assert not Path("/tmp/detforge-should-not-exist").exists()
