"""The house dependency rules, checked on the source: stages only import the stages they may."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "detforge"

# stage -> detforge stages it may import (besides itself, errors, fileio and structures).
ALLOWED: dict[str, set[str]] = {
    "structures": set(),
    "config": {"models", "data"},
    "data": {"visualization"},  # the label gallery draws with the shared drawing module
    "models": {"reading"},  # the artifact stores the model's ReadSettings
    "evaluation": {"visualization", "data"},  # the report draws worst images
    "visualization": set(),
    "reading": set(),  # recognisers work on numpy crops; inference calls them
    "inference": {"models", "data", "visualization", "reading"},
    "export": {"models", "inference", "reading"},
    "serving": {"inference", "visualization", "export", "reading"},
    "engine": {"models", "data", "evaluation", "config", "reading"},
    "indexing": {"inference", "reading", "data", "visualization", "export", "batch"},
    "batch": {"inference", "data"},  # shards of predictions; Ray's decoding tasks use data.images (no torch)
}
ALWAYS = {"_version", "errors", "fileio", "outdir", "pixels", "progress", "structures", "thresholds", "__init__"}
# Modules of the data stage that may use torch (the training input pipeline); the rest of the
# data stage must stay importable without torch so that `detforge data ...` starts fast.
TORCH_OK_IN_DATA = {"transforms.py", "loader.py", "sampler.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _stage_files() -> list[tuple[str, Path]]:
    return [(p.relative_to(SRC).parts[0], p) for p in sorted(SRC.rglob("*.py")) if len(p.relative_to(SRC).parts) > 1]


@pytest.mark.parametrize(("stage", "path"), _stage_files(), ids=lambda v: str(v) if isinstance(v, str) else v.name)
def test_stage_imports_follow_house_rules(stage: str, path: Path) -> None:
    if stage in ("api", "cli"):
        return
    allowed = ALLOWED.get(stage, set()) | ALWAYS | {stage}
    for name in _imports(path):
        parts = name.split(".")
        assert name != "detforge", (
            f"{path.relative_to(SRC)} imports the package top (`from detforge import ...`), which imports the "
            "public API and every stage: import the leaf module instead (e.g. detforge._version)"
        )
        if parts[0] != "detforge" or len(parts) < 2:
            continue
        assert parts[1] in allowed, (
            f"{path.relative_to(SRC)} imports {name}; stage {stage!r} may import {sorted(allowed)}"
        )
        assert parts[1] not in ("api", "cli"), f"{path.relative_to(SRC)} imports {name}: nothing imports api or cli"


def test_data_layer_does_not_import_torch() -> None:
    offenders = []
    for stage, path in _stage_files():
        if stage in ("data", "visualization", "structures") and path.name not in TORCH_OK_IN_DATA:
            if path.name == "detections.py" and stage == "structures":
                continue
            if any(n.split(".")[0] in ("torch", "torchvision") for n in _imports(path)):
                offenders.append(str(path.relative_to(SRC)))
    assert not offenders, f"these data-layer modules import torch: {offenders}"


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules by job: {long}"
