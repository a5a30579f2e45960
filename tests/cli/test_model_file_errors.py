"""A plain torch.save file or a training checkpoint given as MODEL: every verb that runs a model answers with
one line saying what the file is and which files are models, before torch is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

_RUN = """
import sys
from detforge.cli import main
status = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "no torch", status)
"""


def _verbs(model: Path, data: Path) -> list[list[str]]:
    return [
        ["eval", str(model), str(data)],
        ["predict", str(model), str(data)],
        ["export", str(model)],
        ["serve", str(model)],
        ["benchmark", str(model)],
    ]


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    torch.save(nn.Conv2d(3, 4, 3).state_dict(), tmp_path / "weights.pt")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": "detforge-best-weights", "model": {"w": torch.zeros(2)}}, run / "checkpoints" / "best.pt")
    (run / "model.pt").write_bytes(b"a model")
    return tmp_path


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("weights.pt", "is a plain PyTorch file (torch.save of tensors or a state dict)"),
        ("run/checkpoints/best.pt", "is a training checkpoint (to resume training), not a model file; use the run's"),
    ],
)
def test_model_verbs_name_the_file_kind_without_importing_torch(workspace: Path, model: str, expected: str) -> None:
    for argv in _verbs(workspace / model, workspace / "data"):
        result = subprocess.run(
            [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, cwd=workspace, timeout=120
        )
        assert result.stdout.strip().splitlines()[-1] == "no torch 1", (argv, result.stdout, result.stderr)
        error = result.stderr.strip().splitlines()
        assert len(error) == 1 and expected in error[0], (argv, result.stderr)
        if "checkpoint" in model:
            assert str(workspace / "run" / "model.pt") in error[0]
        else:
            assert "model.pt (from detforge train)" in error[0] and ".onnx / .ts" in error[0]
