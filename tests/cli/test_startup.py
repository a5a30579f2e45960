"""Starting the CLI is cheap: importing it, parsing any verb's arguments, `detforge models` and input errors
never import torch (torch alone takes seconds to import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

_PARSE_EVERY_VERB = """
import sys
from detforge.cli import build_parser
parser = build_parser()
for argv in (["data", "check", "d"], ["data", "stats", "d"], ["data", "show", "d", "--out", "o"],
             ["data", "split", "d", "--out", "o"], ["data", "convert", "d", "o", "--to", "yolo"],
             ["data", "sample", "o"], ["train", "d", "train.lr=0.1"], ["eval", "m.pt", "d"],
             ["predict", "m.pt", "d"], ["export", "m.pt"], ["benchmark", "m.pt"], ["serve", "m.pt"],
             ["models"], ["config", "show"], ["index", "m.pt", "d", "--out", "o"]):
    parser.parse_args(argv)
print(sorted(m for m in ("torch", "torchvision", "numpy") if m in sys.modules))
"""

_RUN = """
import sys
from detforge.cli import main
status = main(sys.argv[1:])
print("TORCH" if "torch" in sys.modules else "no torch", status)
"""


def _python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_importing_the_cli_and_parsing_any_verb_does_not_import_torch() -> None:
    result = _python(_PARSE_EVERY_VERB)
    assert result.returncode == 0, result.stderr
    assert "torch" not in result.stdout.strip().splitlines()[-1], result.stdout


def test_input_errors_and_models_answer_without_torch(tmp_path: Path) -> None:
    data = tmp_path / "tiny"
    data.mkdir()
    Image.new("RGB", (32, 24)).save(data / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (data / "annotations.json").write_text(json.dumps(coco))
    (tmp_path / "notes.txt").write_text("x")
    for argv, status in (
        (["train", str(data), "train.lrr=0.1"], 1),
        (["eval", str(tmp_path / "missing.pt"), str(data)], 1),
        (["eval", str(tmp_path / "notes.txt"), str(data)], 1),
        (["predict", str(tmp_path / "missing.pt"), str(data)], 1),
        (["export", str(tmp_path / "missing.pt")], 1),
        (["benchmark", str(tmp_path / "missing.onnx")], 1),
        (["serve", str(tmp_path / "missing.pt")], 1),
        (["index", str(tmp_path / "missing.pt"), str(data), "--out", str(tmp_path / "o")], 1),
        (["models"], 0),
        (["models", "--json"], 0),
    ):
        result = _python(_RUN, *argv, cwd=tmp_path)
        assert result.stdout.strip().splitlines()[-1] == f"no torch {status}", (argv, result.stdout, result.stderr)


_STATS = """
import sys
from detforge.api.data import _cpu_model_input
from detforge.cli import main
from detforge.data.formats import load_dataset
status = main(["data", "stats", sys.argv[1], "--out", sys.argv[2]])
model = _cpu_model_input(load_dataset(sys.argv[1]))
print(model.name if model else None, model.min_size if model else None, status)
print("TORCH" if "torch" in sys.modules else "no torch")
"""


def test_data_stats_plots_the_models_resize_without_torch(tmp_path: Path) -> None:
    """The "after the model's resize" plot needs the model's sizes: they come from the zoo table, not torch."""
    data = tmp_path / "tiny"
    data.mkdir()
    Image.new("RGB", (640, 480)).save(data / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 60, 40], "area": 2400, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (data / "annotations.json").write_text(json.dumps(coco))
    result = _python(_STATS, str(data), str(tmp_path / "stats"))
    assert result.returncode == 0, result.stderr
    sizes, torch_line = result.stdout.strip().splitlines()[-2:]
    assert sizes.split()[0] == "gfl_mobilenet_v2_s" and sizes.split()[-1] == "0", sizes
    assert (tmp_path / "stats" / "box_size_px.png").is_file()
    assert torch_line == "no torch", result.stdout
