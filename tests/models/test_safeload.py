"""Malicious pickles are refused before anything in them runs, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from detforge.errors import CheckpointError
from detforge.models import build_detector, load_model
from detforge.models.safeload import safe_torch_load


class _CreatesFile:
    """Unpickling this calls open(path, "w"): the file appearing proves the pickle ran code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def _payload(target: Path) -> dict[str, object]:
    return {"format": "detforge.model", "state_dict": {"w": torch.zeros(2)}, "spec": _CreatesFile(target)}


def _variants(tmp_path: Path, target: Path) -> dict[str, Path]:
    files = {
        "zip": tmp_path / "zip.pt",
        "zip-protocol4": tmp_path / "zip4.pt",
        "legacy": tmp_path / "legacy.pt",
        "plain-pickle": tmp_path / "plain.pkl",
    }
    torch.save(_payload(target), files["zip"])
    torch.save(_payload(target), files["zip-protocol4"], pickle_protocol=4)  # STACK_GLOBAL opcodes
    torch.save(_payload(target), files["legacy"], _use_new_zipfile_serialization=False)
    files["plain-pickle"].write_bytes(pickle.dumps(_payload(target), protocol=5))
    return files


def test_torch_itself_runs_the_pickle_when_weights_only_is_not_explicit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The threat: with the variable set, a bare torch.load executes the payload (why detforge scans first)."""
    target = tmp_path / "pwned"
    path = _variants(tmp_path, target)["zip"]
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning):
        torch.load(path)
    assert target.exists()


@pytest.mark.parametrize("force_env", [False, True])
def test_malicious_pickles_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force_env: bool) -> None:
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    target = tmp_path / "pwned"
    for kind, path in _variants(tmp_path, target).items():
        for load in (load_model, safe_torch_load):
            with pytest.raises(CheckpointError, match=r"refused: the file would import \w") as caught:
                load(path)
            assert str(path) in str(caught.value), kind
            assert kind == "plain-pickle" or ".open;" in str(caught.value)
        with pytest.raises(CheckpointError, match="refused"):
            build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=2, weights=path)
        assert not target.exists(), kind


def test_plain_tensor_files_pass_the_scan(tmp_path: Path) -> None:
    state = {"a": torch.arange(3), "b": torch.ones(2, 2, dtype=torch.float16)}
    # (torch's weights-only unpickler cannot read protocol 4 files at all, so they are not tried here)
    for i, kwargs in enumerate([{}, {"_use_new_zipfile_serialization": False}]):
        path = tmp_path / f"{i}.pt"
        torch.save(state, path, **kwargs)  # type: ignore[arg-type]
        loaded = safe_torch_load(path)
        assert torch.equal(loaded["a"], state["a"]) and torch.equal(loaded["b"], state["b"])
