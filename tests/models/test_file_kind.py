"""Model-like files are told apart from their headers alone: what a command says before it imports torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from detforge.models.artifact_io import write_artifact
from detforge.models.file_kind import file_kind, model_file_problem


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model.pt as `save_model` writes it (only its container matters here: the sections are not read)."""
    sections = {"spec": {"model_name": "m"}, "setup": {}, "detection_params": {}}
    return write_artifact(tmp_path_factory.mktemp("run") / "model.pt", sections, {"w": torch.zeros(2)})


def test_a_detforge_model_file_passes(artifact: Path, tmp_path: Path) -> None:
    assert file_kind(artifact) == ("artifact", "")
    assert model_file_problem(artifact) is None
    legacy = tmp_path / "model.pt"  # format 1: a torch zip of the same sections
    torch.save({"format": "detforge.model", "format_version": 1, "state_dict": {"w": torch.zeros(2)}}, legacy)
    assert model_file_problem(legacy) is None


def test_a_plain_state_dict_is_named_and_the_model_files_listed(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(nn.Conv2d(3, 4, 3).state_dict(), path)
    problem = model_file_problem(path)
    assert problem is not None and "plain PyTorch file" in problem
    assert "model.pt (from detforge train)" in problem and ".onnx / .ts" in problem


def test_a_pickled_module_is_named_by_its_class(tmp_path: Path) -> None:
    path = tmp_path / "net.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)), path)
    assert file_kind(path) == ("module", "torch.nn.modules.container.Sequential")
    problem = model_file_problem(path)
    assert (
        problem is not None
        and "a pickled torch.nn.modules.container.Sequential object (torch.save of a whole module" in problem
    )


def test_a_training_checkpoint_names_the_runs_model_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name, fmt in (("last.pt", "detforge-train-checkpoint"), ("best.pt", "detforge-best-weights")):
        torch.save({"format": fmt, "version": 1, "model": {"w": torch.zeros(2)}}, run / "checkpoints" / name)
    assert "has no model.pt yet" in (model_file_problem(run / "checkpoints" / "last.pt") or "")
    (run / "model.pt").write_bytes(b"x")
    for name in ("last.pt", "best.pt"):
        problem = model_file_problem(run / "checkpoints" / name)
        assert problem is not None and f"use the run's model file {run / 'model.pt'}" in problem


def test_plain_safetensors_and_misnamed_files_are_refused(tmp_path: Path, artifact: Path) -> None:
    from safetensors.torch import save_file

    weights = tmp_path / "weights.pt"
    save_file({"w": torch.zeros(2)}, str(weights))
    assert "plain safetensors weights" in (model_file_problem(weights) or "")
    renamed = tmp_path / "model.ts"
    renamed.write_bytes(artifact.read_bytes())
    assert "renamed .ts" in (model_file_problem(renamed) or "")
    notes = tmp_path / "notes.pt"
    notes.write_text("not a model")
    assert "not a model file" in (model_file_problem(notes) or "")


def test_torchscript_passes_as_ts_and_is_named_as_pt(tmp_path: Path) -> None:
    scripted = torch.jit.script(nn.Conv2d(3, 4, 3))
    torch.jit.save(scripted, str(tmp_path / "graph.ts"))
    torch.jit.save(scripted, str(tmp_path / "graph.pt"))
    assert model_file_problem(tmp_path / "graph.ts") is None
    assert "TorchScript archive" in (model_file_problem(tmp_path / "graph.pt") or "")


def test_a_pickled_detforge_object_is_not_taken_for_a_model_file(tmp_path: Path) -> None:
    """`detforge.models...` in a pickled class's module path is not the model file's format string."""
    from detforge.models.info import MODEL_ROWS

    path = tmp_path / "row.pt"
    torch.save(MODEL_ROWS["fasterrcnn_mobilenet_v2_fpn"], path)
    assert file_kind(path) == ("module", "detforge.models.info.ModelRow")
    assert "a pickled detforge.models.info.ModelRow object" in (model_file_problem(path) or "")
