"""`detforge export` never replaces a file it did not write: an earlier export of ours is replaced
(atomically, once the new one passed its parity check), anything else only with `overwrite`, and the
model being exported never. The refusal comes before the model loads (and before torch, on the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

import detforge
from detforge.models.artifact_io import write_artifact
from detforge.models.file_kind import export_target_problem, is_detforge_export
from detforge.outdir import OutputFolderError


def _onnx_file(path: Path, props: dict[str, str]) -> Path:
    """A small valid ONNX graph (Identity) with `props` as its metadata_props and a large initializer, so the
    metadata comes after a long graph field."""
    big = helper.make_tensor("w", TensorProto.FLOAT, [50_000], [0.0] * 50_000)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[big],
    )
    model = helper.make_model(graph)
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def test_detforge_exports_are_told_from_other_files(tmp_path: Path, tiny_onnx: detforge.export.ExportReport) -> None:
    assert is_detforge_export(tiny_onnx.path)
    assert is_detforge_export(_onnx_file(tmp_path / "ours.onnx", {"detforge.model_name": '"m"'}))
    assert not is_detforge_export(_onnx_file(tmp_path / "theirs.onnx", {"author": "someone"}))
    assert not is_detforge_export(_onnx_file(tmp_path / "bare.onnx", {}))
    (tmp_path / "notes.onnx").write_text("notes")
    assert not is_detforge_export(tmp_path / "notes.onnx")


def test_export_refuses_a_users_file_and_replaces_only_its_own(tmp_path: Path, tiny_artifact: Path) -> None:
    theirs = _onnx_file(tmp_path / "model.onnx", {"author": "someone"})
    before = theirs.read_bytes()
    with pytest.raises(OutputFolderError, match=r"exists and is not a detforge export.*--overwrite"):
        detforge.export_model(tiny_artifact, out=theirs)
    assert theirs.read_bytes() == before  # untouched
    report = detforge.export_model(tiny_artifact, out=theirs, overwrite=True)
    assert report.path == theirs and is_detforge_export(theirs)
    again = detforge.export_model(tiny_artifact, out=theirs)  # our own earlier export: replaced
    assert again.path == theirs and is_detforge_export(theirs)
    assert not list(tmp_path.glob(".model.onnx.*")), "the pending file was left behind"


def test_export_into_a_folder_follows_the_same_rule(tmp_path: Path, tiny_artifact: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / f"{tiny_artifact.stem}.ts").write_text("a user's notes")
    with pytest.raises(OutputFolderError, match="not a detforge export"):
        detforge.export_model(tiny_artifact, format="torchscript", out=folder)
    assert (folder / f"{tiny_artifact.stem}.ts").read_text() == "a user's notes"
    report = detforge.export_model(tiny_artifact, format="onnx", out=folder)
    assert report.path == folder / f"{tiny_artifact.stem}.onnx"


def test_the_model_itself_is_never_the_target(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"x")
    assert "is the model being exported" in (export_target_problem(model, source=model, overwrite=True) or "")
    assert "is a folder" in (export_target_problem(tmp_path, source=model, overwrite=True) or "")


_RUN = """
import sys
from detforge.cli import main
status = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "no torch", status)
"""


def test_cli_refuses_before_importing_torch_and_overwrite_is_the_way(tmp_path: Path) -> None:
    sections = {"spec": {"model_name": "m"}, "setup": {}, "detection_params": {}}
    model = write_artifact(tmp_path / "model.pt", sections, {"w": torch.zeros(2)})
    (tmp_path / "model.onnx").write_text("a user's file")  # the default target, beside the model
    result = subprocess.run(
        [sys.executable, "-c", _RUN, "export", str(model)], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "no torch 1", result.stderr
    assert "model.onnx: the file exists and is not a detforge export" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "model.onnx").read_text() == "a user's file"


def test_a_new_folder_name_gets_the_models_file_inside(tmp_path: Path) -> None:
    """`--out exp/` (or `--out exp`, no suffix) for a folder that does not exist yet: the export goes to
    exp/<model stem>.onnx, not into a file named `exp` (found in a review run)."""
    from detforge.models.file_kind import export_target

    model = tmp_path / "model.pt"
    assert export_target(model, f"{tmp_path / 'exp'}/", "onnx") == tmp_path / "exp" / "model.onnx"
    assert export_target(model, tmp_path / "exp2", "torchscript") == tmp_path / "exp2" / "model.ts"
    assert export_target(model, tmp_path / "named.onnx", "onnx") == tmp_path / "named.onnx"


def test_the_cli_offers_exactly_the_formats_and_backends_the_exporter_knows() -> None:
    """One list of export formats and benchmark backends (the CLI repeated them as literals)."""
    import argparse
    from typing import get_args

    from detforge.cli import build_parser
    from detforge.export import ExportFormat
    from detforge.export.benchmark import BenchmarkBackend
    from detforge.models.file_kind import BENCHMARK_BACKENDS, EXPORT_SUFFIXES

    assert tuple(EXPORT_SUFFIXES) == get_args(ExportFormat)
    assert get_args(BenchmarkBackend) == BENCHMARK_BACKENDS
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    choices = {a.dest: a.choices for verb in ("export", "benchmark") for a in commands[verb]._actions}
    assert tuple(choices["format"]) == get_args(ExportFormat)
    assert tuple(choices["backends"]) == get_args(BenchmarkBackend)
