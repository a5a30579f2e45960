"""Every CLI verb over a table of wrong arguments: one-line error, non-zero exit, never a traceback.

Runs in-process through `detforge.cli.main`. Every case is an input error that the CLI catches before
any model is built or torch is needed (tests/cli/test_startup.py checks that torch stays unimported).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli import build_parser, main

# (argv with {D} a dataset, {M} a zip named .pt that is no model, {JUNK} a .pt of text, {RUN} a run folder,
#  {FILE} a plain file, {DIR} an empty folder, {O} a new output folder, {X} a missing path, {CONFIG} a config
#  with a misspelled key; text the error must contain)
CASES: list[tuple[str, str]] = [
    # unknown flags, commands and choices: the nearest spelling is suggested
    ("data check {D} --stirct", "unknown flag --stirct; did you mean --strict?"),
    ("data stats {D} --jsn", "did you mean --json?"),
    ("data show {D} --out {O} --seeed 1", "did you mean --seed?"),
    ("data split {D} --out {O} --ratoi 0.5 0.5", "did you mean --ratios?"),
    ("data convert {D} {O} --to yolo --formt coco", "did you mean --format?"),
    ("data sample {O} --sed 3", "did you mean --seed?"),
    ("data convert {D} {O} --to yol", "did you mean 'yolo'?"),
    ("data chek {D}", "did you mean 'check'?"),
    ("modles", "did you mean 'models'?"),
    ("models --aliasses", "did you mean --aliases?"),
    ("config show --yaml", "unknown flag --yaml"),
    ("train {D} --tme 10m", "did you mean --time?"),
    ("eval {M} {D} --splt val", "did you mean --split?"),
    ("predict {M} {D} --score-treshold 0.3", "did you mean --score-threshold?"),
    ("export {M} --opst 12", "did you mean --opset?"),
    ("benchmark {M} --rnus 3", "did you mean --runs?"),
    ("serve {M} --prot 80", "did you mean --port?"),
    ("index {M} {D} --out {O} --srot-into {O}", "did you mean --sort-into?"),
    ("data check {D} surplus", "unexpected argument 'surplus'"),
    # wrong types
    ("data sample {O} --n three", "argument --n: expected an integer >= 1, got 'three'"),
    ("data split {D} --out {O} --seed x", "argument --seed"),
    ("eval {M} {D} --bootstrap many", "argument --bootstrap"),
    ("predict {M} {D} --batch-size 2.5", "argument --batch-size"),
    ("serve {M} --port http", "argument --port"),
    ("benchmark {M} --runs ten", "argument --runs"),
    ("data show {D} --out {O} --format parquet", "invalid choice: 'parquet'"),
    # out-of-range numbers
    ("data show {D} --out {O} --n 0", "argument --n: expected an integer >= 1, got 0"),
    ("data sample {O} --n -5", "argument --n"),
    ("data split {D} --out {O} --folds 1", "argument --folds: expected an integer >= 2"),
    ("data split {D} --out {O} --ratios 0.8 1.5", "argument --ratios: expected a number in [0, 1]"),
    ("eval {M} {D} --score-threshold 1.5", "argument --score-threshold"),
    ("eval {M} {D} --bootstrap -1", "argument --bootstrap"),
    ("eval {M} {D} --calibrate --target-precision 2", "argument --target-precision"),
    ("eval {M} {D} --calibrate --target-precision 0", "expected a number in (0, 1], got 0"),
    ("predict {M} {D} --tile-overlap 1", "argument --tile-overlap: expected a number in [0, 1)"),
    ("predict {M} {D} --batch-size 0", "argument --batch-size"),
    ("predict {M} {D} --tile 0", "argument --tile"),
    ("export {M} --opset 5", "argument --opset: expected an integer from 11 to 20"),
    ("benchmark {M} --runs 0", "argument --runs"),
    ("benchmark {M} --warmup -1", "argument --warmup"),
    ("serve {M} --port 70000", "argument --port"),
    ("serve {M} --timeout-s 0", "argument --timeout-s"),
    ("serve {M} --max-batch 0", "argument --max-batch"),
    ("train {D} --devices 0", "argument --devices"),
    ("index {M} {D} --out {O} --batch-size 0", "argument --batch-size"),
    ("index {M} {D} --out {O} --score-threshold -0.1", "argument --score-threshold"),
    # missing arguments
    ("", "required: COMMAND"),
    ("config", "required: VERB"),
    ("data show {D}", "required: --out"),
    ("eval {M}", "expected MODEL and DATA"),
    ("eval {M} {D} --detections {FILE}", "give only the dataset"),
    # missing paths
    ("data check {X}", "no such file or folder"),
    ("data stats {X}", "no such file or folder"),
    ("data show {X} --out {O}", "no such file or folder"),
    ("data split {X} --out {O}", "no such file or folder"),
    ("data convert {X} {O} --to yolo", "no such file or folder"),
    ("train {X}", "no such file or folder"),
    ("eval {X}.pt {D}", "no such file; models are a run's model.pt"),
    ("eval {M} {X}", "no such file or folder"),
    ("eval --detections {X}.json {D}", "no such file or folder"),
    ("predict {X}.pt {D}", "no such file; models are"),
    ("predict {M} {X}", "no such file or folder"),
    ("export {X}.pt", "no such file; models are"),
    ("benchmark {X}.onnx", "no such file; models are"),
    ("benchmark {M} --images {X}.jpg", "no such file or folder"),
    ("serve {X}.ts", "no such file; models are"),
    ("index {X}.pt {D} --out {O}", "no such file; models are"),
    ("index {M} {X} --out {O}", "no such file or folder"),
    # paths of the wrong kind
    ("data stats {D} --out {FILE}", "is a file"),
    ("data convert {D} {FILE} --to yolo", "is a file"),
    ("data show {D} --out {FILE}", "is a file"),
    ("data split {D} --out {FILE}", "is a file"),
    ("data sample {FILE}", "is a file"),
    ("eval {FILE} {D}", "is not a model file; models are a run's model.pt"),
    ("eval {DIR} {D}", "is a folder, not a model file; models are"),
    ("predict {RUN} {D}", "is a folder, not a model file; did you mean"),
    ("predict {FILE} {D}", "is not a model file"),
    ("predict {JUNK} {D}", "its content is no model format); models are"),
    ("eval {JUNK} {D} --split val", "its content is no model format"),
    ("eval {M} {D} --split nope", "no subset 'nope' to evaluate; subsets: annotations"),
    ("export {M} --out {FILE}", "the file exists and is not a detforge export"),
    ("export {M} --out {M}", "is the model being exported"),
    ("serve {FILE}", "is not a model file"),
    ("index {M} {D} --out {FILE}", "is a file"),
    ("train {D} --out {FILE}", "is a file"),
    ("data split {D} --out {FILE}/sub", "is a file, so it cannot hold sub"),
    ("data convert {D} {FILE}/sub --to yolo", "is a file, so it cannot hold sub"),
    ("data stats {D} --out {FILE}/sub", "is a file, so it cannot hold sub"),
    ("data show {D} --out {FILE}/sub", "is a file, so it cannot hold sub"),
    ("data sample {FILE}/sub", "is a file, so it cannot hold sub"),
    ("eval {M} {D} --out {FILE}/sub", "is a file, so it cannot hold sub"),
    ("predict {M} {D} --out {FILE}/sub", "is a file, so it cannot hold sub"),
    ("export {M} --out {FILE}/sub/m.onnx", "is a file, so it cannot hold m.onnx"),
    # configuration keys and values
    ("train {D} train.lrr=0.1", "unknown key 'train.lrr'"),
    ("train {D} model.name=fasterrcnn_mobilenet_v3_fpn", "fasterrcnn_mobilenet_v3_large_fpn"),
    ("train {CONFIG}", "did you mean"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_args")
    data = root / "tiny"
    data.mkdir()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(data / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (data / "annotations.json").write_text(json.dumps(coco))
    (root / "notes.txt").write_text("not a model\n")
    (root / "fake.pt").write_bytes(b"PK\x03\x04 a zip archive, but no model")
    (root / "junk.pt").write_bytes(b"not a model either")
    (root / "run").mkdir()
    (root / "run" / "model.pt").write_bytes(b"")
    (root / "empty").mkdir()
    (root / "config.yaml").write_text("model:\n  nam: fasterrcnn_mobilenet_v2_fpn\n")
    return {
        "D": str(data),
        "M": str(root / "fake.pt"),
        "JUNK": str(root / "junk.pt"),
        "RUN": str(root / "run"),
        "FILE": str(root / "notes.txt"),
        "DIR": str(root / "empty"),
        "O": str(root / "new_out"),
        "X": str(root / "missing"),
        "CONFIG": str(root / "config.yaml"),
    }


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[c[0] or "(nothing)" for c in CASES])
def test_wrong_arguments_give_one_line_and_no_traceback(
    template: str, expected: str, places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [part.format(**places) for part in template.split()]
    status = _run(argv)
    out, err = capsys.readouterr()
    assert status != 0, f"exit 0 for {argv}: {out}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "error" in lines[0] and expected in lines[0], lines[0]
    assert not Path(places["O"]).exists(), "a failed command wrote its output folder"


def _leaf_verbs(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix.strip()}
    return {v for name, sub in subs[0].choices.items() for v in _leaf_verbs(sub, f"{prefix} {name}")}


def test_the_table_covers_every_verb() -> None:
    covered = {" ".join(t.split()[:2]) if t.startswith(("data", "config")) else t.split()[0] for t, _ in CASES if t}
    assert _leaf_verbs(build_parser()) <= covered | {"config show"}


@pytest.mark.parametrize("argv", [["data", "check", "{D}", "-v"], ["-v", "data", "check", "{D}"]])
def test_verbose_is_accepted_before_and_after_the_subcommand(
    argv: list[str], places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    parsed = build_parser().parse_args([a.format(**places) for a in argv])
    assert parsed.verbose is True
    assert build_parser().parse_args(["data", "check", places["D"]]).verbose is False
