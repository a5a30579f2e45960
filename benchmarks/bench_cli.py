"""How long the `detforge` command takes to answer when no model runs: help, input errors, `detforge models`.

Times whole processes (start, imports, parsing, the answer, exit), as a user waits for them, in a folder
holding a one-image COCO dataset. Goal: every row under 1.5 s. The peer column is the floor any Python
command line pays on this machine, `python -c pass`; the note of each row says what the command is.
Run: `.venv/bin/python benchmarks/bench_cli.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

__all__ = ["GOAL_S", "main"]

GOAL_S = 1.5
"""Seconds within which `--help` and every input error must answer."""

# (case, arguments after `detforge`, expected exit status, note)
CASES: tuple[tuple[str, tuple[str, ...], int, str], ...] = (
    ("detforge --help", ("--help",), 0, "top-level help"),
    ("detforge train --help", ("train", "--help"), 0, "a verb's help"),
    ("config typo", ("train", "tiny", "train.lrr=0.1"), 1, "train DATA train.lrr=0.1: unknown key, nearest one named"),
    ("eval on a missing model", ("eval", "missing.pt", "tiny"), 1, "eval MODEL DATA with no such MODEL file"),
    ("eval on a file that is no model", ("eval", "notes.txt", "tiny"), 1, "says which files are models"),
    (
        "eval on a plain torch.save file",
        ("eval", "weights.pt", "tiny"),
        1,
        "a torch.save'd state dict as MODEL: says what it is and which files are models",
    ),
    (
        "predict on a training checkpoint",
        ("predict", "run/checkpoints/best.pt", "tiny"),
        1,
        "a run's checkpoints/best.pt as MODEL: names the run's model.pt",
    ),
    ("unknown flag", ("data", "check", "tiny", "--stirct"), 2, "data check --stirct: suggests --strict"),
    ("out-of-range number", ("data", "show", "tiny", "--out", "g", "--n", "0"), 2, "data show --n 0"),
    ("detforge models", ("models",), 0, "the zoo table (stored GFLOPs and parameters)"),
)


def _command() -> list[str]:
    """The installed `detforge` script beside this Python, else `python -m detforge`."""
    script = Path(sys.executable).with_name("detforge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "detforge"]


def _write_workspace(root: Path) -> None:
    from PIL import Image

    data = root / "tiny"
    data.mkdir()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(data / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (data / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    (root / "notes.txt").write_text("not a model\n", encoding="utf-8")
    import torch  # the driver writes real torch.save files; the timed commands must not import torch

    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "conv.bias": torch.zeros(4)}, root / "weights.pt")
    (root / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"format": "detforge-best-weights", "model": {"w": torch.zeros(2)}}, root / "run/checkpoints/best.pt")
    (root / "run" / "model.pt").write_bytes(b"")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], cwd: Path, runs: int) -> tuple[list[float], list[float], int, str]:
    """Wall seconds and CPU seconds (user + system) of `runs` runs (after one untimed warm-up run), the exit
    status and the last stderr line. CPU time is what the command costs even when the machine is busy."""
    samples, cpu, status, last = [], [], 0, ""
    for i in range(runs + 1):
        cpu_start, start = _children_cpu_s(), time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        elapsed, cpu_used = time.perf_counter() - start, _children_cpu_s() - cpu_start
        shutil.rmtree(cwd / "g", ignore_errors=True)
        if i:
            samples.append(elapsed)
            cpu.append(cpu_used)
        status = done.returncode
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
    return samples, cpu, status, last


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Median/min/max seconds of each CASES command as a whole process; writes `out_dir/cli.json`."""
    runs = 3 if quick else 7
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        root = Path(tmp)
        _write_workspace(root)
        floor, _, _, _ = _time([sys.executable, "-c", "pass"], root, runs)
        torch_import, _, _, _ = _time([sys.executable, "-c", "import torch"], root, max(1, runs // 2))
        for case, args, expected, note in CASES:
            samples, cpu, status, last = _time([*_command(), *args], root, runs)
            median = statistics.median(samples)
            rows.append(
                {
                    "case": case,
                    "detforge": round(median, 3),
                    "peer": round(statistics.median(floor), 3),
                    "unit": "s (whole process)",
                    "ratio_min": round(min(samples), 3),
                    "ratio_max": round(max(samples), 3),
                    "cpu_s": round(statistics.median(cpu), 3),
                    "goal": f"< {GOAL_S} s",
                    "meets_goal": median < GOAL_S and status == expected,
                    "note": f"{note}; exit {status} (expected {expected}); CPU {statistics.median(cpu):.2f} s",
                    "stderr": last if status else "",
                }
            )
    result: dict[str, Any] = {
        "benchmark": "cli",
        "what": "whole `detforge` processes that run no model; peer = `python -c pass`; ratio_min/max = "
        "fastest/slowest run in seconds; cpu_s = median user + system CPU seconds (what a run costs when the "
        "machine is busy)",
        "load_average": os.getloadavg()[0],
        "runs": runs,
        "python_start_s": round(statistics.median(floor), 3),
        "import_torch_s": round(statistics.median(torch_import), 3),
        "goal_s": GOAL_S,
        "all_meet_goal": all(r["meets_goal"] for r in rows),
        "rows": rows,
        "machine": machine_info(with_matmul=False),
    }
    write_result(out_dir, "cli", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 runs per command instead of 7")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    res = main(cli.out, quick=cli.quick)
    print(
        f"python -c pass {res['python_start_s']:.2f} s, import torch {res['import_torch_s']:.2f} s, "
        f"load average {res['load_average']:.1f}"
    )
    for row in res["rows"]:
        mark = "ok " if row["meets_goal"] else "SLOW"
        print(f"{mark} {row['detforge']:6.2f} s  {row['case']:32s} {row['note']}  {row['stderr']}")
