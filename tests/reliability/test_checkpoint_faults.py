"""Checkpoint faults: disk full during a save (a clear OSError, no temp file left, the previous checkpoint
loadable); malicious pickles refused by every loader of user files before anything in them runs; weights
that do not match the model named key by key."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.engine import checkpoint
from detforge.engine.checkpoint import load_checkpoint, load_resume_checkpoint, save_last
from detforge.errors import CheckpointError


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


# ---------------------------------------------------------------- malicious and mismatched files
# Already covered elsewhere: tests/models/test_safeload.py (load_model, safe_torch_load and
# build_detector(weights=...) refuse zip/legacy/protocol-4/plain pickles, with and without
# TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD), tests/engine/test_checkpoint.py::test_loading_is_weights_only
# (load_checkpoint under the variable), tests/models/test_artifact.py::test_load_errors_name_the_keys
# (load_model names missing, unexpected, mis-shaped and non-tensor keys). Added here: the Predictor
# entry points, resuming (the checkpoint loader and `train_from_config(resume=True)`) with the same
# allow-list refusal, and a resume whose model weights do not match the model.

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


class _Touch:
    """Unpickling this creates `target`: the file appearing proves the pickle ran code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.target,))


def _malicious(path: Path, target: Path, *, legacy: bool) -> Path:
    """A training checkpoint (and would-be model file) with a code-running object inside."""
    payload = {
        "format": "detforge-train-checkpoint", "version": 1, "iteration": 4,
        "model": {"w": torch.ones(2)}, "spec": _Touch(target),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


def _tiny_coco(root: Path) -> Path:
    """A COCO "train" subset: two 64x64 images, one box each, classes "a" and "b"."""
    from PIL import Image

    (root / "images" / "train").mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i in (1, 2):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(root / "images" / "train" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 64})
        anns.append({"id": i, "image_id": i, "category_id": i, "bbox": [8, 8, 30, 30], "area": 900, "iscrowd": 0})
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


def _config(data: Path) -> Any:
    from detforge.config import load_config

    return load_config(None, [
        f"model.name={NAME}", "model.weights=none", "model.min_size=64", "model.max_size=64", "train.device=cpu",
        "train.max_iter=4", "train.warmup_iters=1", "data.num_workers=0", "data.val=null", "data.test=null",
        f"data.path={data}",
    ])  # fmt: skip


def _predictor(path: Path) -> object:
    from detforge.inference import Predictor

    return Predictor(path, device="cpu")


def _predictor_from_checkpoint(path: Path) -> object:
    from detforge.inference import Predictor

    return Predictor.from_checkpoint(path, device="cpu")


def _resume_folder(path: Path) -> object:
    return load_resume_checkpoint(path.parent)


def _train_resume(path: Path) -> object:
    from detforge.engine import train_from_config

    run = path.parent.parent
    return train_from_config(_config(run / "no-data-needed"), out_dir=run, resume=True, progress=False)


ENTRY_POINTS = {
    "Predictor(path)": _predictor,
    "Predictor.from_checkpoint": _predictor_from_checkpoint,
    "load_checkpoint": load_checkpoint,
    "load_resume_checkpoint": _resume_folder,
    "train_from_config(resume=True)": _train_resume,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("force_env", [False, True], ids=["default", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_malicious_checkpoint_is_refused_before_it_runs(
    entry: str, legacy: bool, force_env: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    target = tmp_path / "pwned"
    path = _malicious(tmp_path / "run" / "checkpoints" / "last.pt", target, legacy=legacy)
    with pytest.raises(CheckpointError) as caught:
        ENTRY_POINTS[entry](path)
    message = str(caught.value)
    assert str(path) in message
    assert "refused: the file would import" in message and "only tensors" in message  # says why, not torch's advice
    assert "weights_only" not in message  # torch's "re-run with weights_only=False" advice is not passed on
    assert not target.exists()


@pytest.mark.timeout(30)
def test_resume_falls_back_past_a_malicious_last_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save_last(_state(1), tmp_path)
    save_last(_state(2), tmp_path)
    target = tmp_path.parent / f"{tmp_path.name}-pwned"
    _malicious(tmp_path / "last.pt", target, legacy=False)
    with caplog.at_level("WARNING"):
        state, path = load_resume_checkpoint(tmp_path)
    assert (state["iteration"], path.name) == (1, "last.prev.pt")
    assert "last.pt" in caplog.text and "refused: the file would import" in caplog.text
    assert not target.exists()


@pytest.mark.timeout(120)
def test_resume_with_weights_that_do_not_match_the_model_names_the_keys(tmp_path: Path) -> None:
    """E.g. a run resumed after a class was added to the data: the checkpoint's heads have the old shapes."""
    from detforge.engine import train_from_config
    from detforge.models import build_detector

    config = _config(_tiny_coco(tmp_path / "data"))  # 2 classes
    other, _ = build_detector(NAME, num_classes=3, weights="none", min_size=64, max_size=64)
    weights = dict(other.state_dict())
    del weights["model.rpn.head.conv.0.0.weight"]
    weights["model.extra.weight"] = torch.zeros(1)
    run = tmp_path / "run"
    save_last({"iteration": 2, "model": weights, "config": config.model_dump(mode="json")}, run / "checkpoints")
    with pytest.raises(CheckpointError) as caught:
        train_from_config(config, out_dir=run, resume=True, progress=False)
    message = str(caught.value)
    assert "do not match" in message
    assert "missing: model.rpn.head.conv.0.0.weight" in message
    assert "unexpected: model.extra.weight" in message
    assert "model.roi_heads.box_predictor.cls_score.weight (checkpoint [4, 1024], model [3, 1024])" in message


@pytest.mark.timeout(30)
def test_resume_after_kills_inside_save_last(tmp_path: Path) -> None:
    """What kills inside `save_last` leave behind, and what the next resume makes of it (in-process; the
    same kills of a real `detforge train` are in test_kill_resume.py)."""
    save_last(_state(1), tmp_path)
    save_last(_state(2), tmp_path)
    # killed while writing the temp file of a third save (two torn files, from two killed processes)
    for pid in (111, 222):
        (tmp_path / f"..last.pt.new.{pid}.tmp").write_bytes(b"PK\x03\x04 torn")
    (tmp_path / ".best.pt.333.tmp").write_bytes(b"PK\x03\x04 torn")
    # killed between the renames of the third save: last.pt is already last.prev.pt, the new file is complete
    third = {"format": "detforge-train-checkpoint", "version": 1, **_state(3)}
    checkpoint.atomic_torch_save(third, tmp_path / ".last.pt.new")
    (tmp_path / "last.pt").replace(tmp_path / "last.prev.pt")
    state, path = load_resume_checkpoint(tmp_path)
    assert (state["iteration"], path.name) == (3, ".last.pt.new")  # the newest complete state, not iteration 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.pt.new", "last.prev.pt"]  # torn files removed
    save_last(_state(4), tmp_path)  # the resumed run's next save puts everything in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.prev.pt", "last.pt"]
    assert load_checkpoint(tmp_path / "last.prev.pt")["iteration"] == 2
