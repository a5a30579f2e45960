"""Time to accuracy: `detforge train` with automatic defaults on the bundled sample data, fixed CPU budget.

Draws the 240-image sample dataset (`detforge.data.sample.make_sample`, seed 0), runs the real CLI
`detforge train DATA data.flip=false eval.period=P --time 10m` (1 minute in quick mode) in a
subprocess, where P is the automatic schedule length divided by 6 so about six validation points are
logged, then reads the run's `metrics.jsonl`: validation AP / AP50 against wall-clock seconds since
the run started. Writes `accuracy.json` and `accuracy_curve.png` (matplotlib Agg) under `out_dir`.

Then the trained model is measured end to end the way a user meets it: the whole command
`detforge eval RUN/model.pt DATA --split test --json` in a subprocess (detection, then reading each
detected task number with the settings `train` derived and stored in model.pt), timed as a process;
its test AP and read metrics (exact reads on matched boxes, end-to-end read recall next to detection
recall at IoU 0.5, pages read exactly) are recorded.

There is no peer here: the figure is the AP reached in the budget, which later changes try to raise.
Run: `.venv/bin/python benchmarks/bench_accuracy.py [--quick] [--out benchmarks/results]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import detforge_cli, detforge_eval, eval_curve  # noqa: E402

__all__ = ["main"]

N_IMAGES = 240
EVAL_POINTS = 6
OVERRIDES = ["data.flip=false"]  # the sample's class is a handwritten number: a mirrored digit is not a digit


def _eval_period(data: Path, budget: str) -> tuple[int, int]:
    """(max_iter the automatic config picks for `budget`, eval.period giving about EVAL_POINTS evaluations)."""
    from detforge.api.train import resolve_config

    config, _ = resolve_config(data, OVERRIDES, time=budget)
    max_iter = config.train.max_iter
    return max_iter, max(1, math.ceil(max_iter / EVAL_POINTS))


def _plot(points: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    minutes = [p["seconds"] / 60 for p in points]
    ax.plot(minutes, [p["ap"] for p in points], marker="o", label="val AP@[.50:.95]")
    ax.plot(minutes, [p["ap50"] for p in points], marker="s", label="val AP50")
    ax.set_xlabel("wall-clock minutes since training started")
    ax.set_ylabel("COCO AP (validation split)")
    ax.set_ylim(0, max(0.05, 1.1 * max(p["ap50"] for p in points)))
    ax.set_xlim(0, 1.05 * max(minutes))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Train for the budget (10 min, quick 1 min) and return the AP-vs-time curve and the AP reached.

    Writes `out_dir/accuracy.json` and `out_dir/accuracy_curve.png`. Times are wall-clock seconds on
    this machine; AP values are COCO AP on the sample's 36-image validation split.
    """
    from detforge.data.sample import make_sample

    out_dir.mkdir(parents=True, exist_ok=True)
    budget = "1m" if quick else "10m"
    with tempfile.TemporaryDirectory(prefix="detforge_bench_acc_") as tmp:
        data = make_sample(Path(tmp) / "data", n=N_IMAGES, seed=0)
        max_iter, period = _eval_period(data, budget)
        run = Path(tmp) / "run"
        cmd = [*detforge_cli(), "train", str(data), *OVERRIDES, f"eval.period={period}"]
        cmd += ["--out", str(run), "--time", budget, "--no-progress", "--no-calibrate", "--json"]
        load_before = [round(v, 2) for v in os.getloadavg()]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        from detforge.engine.logs import read_metrics

        events = read_metrics(run)
        points = eval_curve(events)
        stop: dict[str, Any] = next((e for e in reversed(events) if e.get("event") == "stop"), {})
        choices = [line for line in proc.stderr.splitlines() if " = " in line and ":" in line][:20]
        evaluation = detforge_eval(run / "model.pt", data, "test")
    if not points:
        raise RuntimeError("the run logged no evaluation")
    best = max(points, key=lambda p: p["ap"])
    final = points[-1]
    png = out_dir / "accuracy_curve.png"
    _plot(points, png, f"detforge train --time {budget} on the sample data (CPU)")
    result: dict[str, Any] = {
        "name": "accuracy",
        "title": f"Time to accuracy: detforge train --time {budget}, sample data ({N_IMAGES} images), CPU",
        "goal": "raise the validation AP reached in the budget (before 2026-11-26: AP 0.180 / AP50 0.494 after 228 "
        "iterations in 10 min)",
        "budget": budget,
        "command": " ".join(["detforge", *cmd[1:]]).replace(str(Path(tempfile.gettempdir())), "$TMP"),
        "auto_max_iter": max_iter,
        "eval_period": period,
        "iterations": int(stop.get("iteration", final["iteration"])),
        "stop_reason": stop.get("reason"),
        "wall_seconds": round(wall, 1),
        "seconds_per_iteration": round(points[-1]["seconds"] / max(points[-1]["iteration"], 1), 2),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "final_ap": final["ap"],
        "final_ap50": final["ap50"],
        "best_ap": best["ap"],
        "best_ap50": best["ap50"],
        "best_at_seconds": best["seconds"],
        "curve": points,
        "plot": png.name,
        "auto_choices": choices,
        "rows": [
            {
                "case": f"val AP after {budget} (best / final)",
                "detforge": round(best["ap"], 4),
                "peer": None,
                "unit": "AP",
                "note": f"final {final['ap']:.4f}, AP50 best {best['ap50']:.4f} / final {final['ap50']:.4f}; "
                f"{len(points)} eval points, {stop.get('iteration', '?')} iterations "
                f"(~{points[-1]['seconds'] / max(points[-1]['iteration'], 1):.1f} s each incl. evaluation)",
            }
        ],
    }
    result["test_eval"] = evaluation
    result["rows"].extend(_eval_rows(evaluation))
    (out_dir / "accuracy.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _eval_rows(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "case": "test AP / AP50 of the trained model (whole `detforge eval` command)",
            "detforge": evaluation["ap"],
            "peer": None,
            "unit": "AP",
            "note": f"AP50 {evaluation['ap50']}; the command took {evaluation['wall_seconds']} s",
        }
    ]
    read = evaluation.get("read")
    if read:
        e2e, recall = read.get("end_to_end_recall"), read.get("detection_recall")
        gap = None if e2e is None or recall is None else round(recall - e2e, 4)
        rows.append(
            {
                "case": "end-to-end read recall vs detection recall at IoU 0.5 (test split)",
                "detforge": e2e,
                "peer": recall,
                "unit": "share of labelled task numbers",
                "goal": "within 0.05 of detection recall",
                "meets_goal": None if gap is None else gap <= 0.05,
                "note": f"exact on matched boxes {read.get('exact_accuracy')}, CER {read.get('cer')}, pages read "
                f"exactly {read.get('page_accuracy')} ({read.get('num_labelled')} labelled boxes)",
            }
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1-minute budget instead of 10 minutes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    res = main(args.out, quick=args.quick)
    print(json.dumps({k: v for k, v in res.items() if k not in ("curve", "auto_choices")}, indent=2))
