"""Shared helpers of the benchmark scripts: thread settings, interleaved timing, peak memory, the machine.

Every benchmark compares detforge against a peer run in the same script on the same inputs; the
machine is shared and noisy, so runs are warmed up, interleaved (ABBA order) and summarised as
median with min/max. Memory figures come from /proc (no psutil).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from detforge.fileio import atomic_write_json

__all__ = [
    "THREADS",
    "Timing",
    "current_rss_mib",
    "detforge_cli",
    "detforge_eval",
    "eval_curve",
    "interleaved",
    "latency_rows",
    "machine_info",
    "matmul_peak_gflops",
    "peak_rss_mib",
    "reset_peak_rss",
    "set_threads",
    "summarize",
    "timing_dict",
    "write_result",
]

THREADS = 2
# Untimed pause between different backends in `interleaved`. ONNX Runtime's worker threads spin-wait after
# each run: OpenVINO timed right after it took 224-236 ms on MobileNetV3-FPN, 205-217 ms alone, and
# 209-220 ms after a 0.2 s pause. A deployed process runs one runtime, so each one gets a quiet start.
SETTLE_S = 0.2
"""torch intra-op threads every benchmark uses (the project's machines have 2 cores)."""


@dataclass(frozen=True)
class Timing:
    """Seconds per call of `n` timed calls: median, min and max (all > 0)."""

    median_s: float
    min_s: float
    max_s: float
    n: int

    def as_ms(self) -> dict[str, float]:
        """median/min/max in milliseconds, rounded to 0.1 ms, plus n."""
        return {
            "median_ms": round(self.median_s * 1000, 1),
            "min_ms": round(self.min_s * 1000, 1),
            "max_ms": round(self.max_s * 1000, 1),
            "n": self.n,
        }


def summarize(samples: Sequence[float]) -> Timing:
    """Median/min/max of `samples` (seconds). ValueError when empty."""
    if not samples:
        raise ValueError("summarize: no samples")
    return Timing(statistics.median(samples), min(samples), max(samples), len(samples))


def set_threads(threads: int = THREADS) -> None:
    """Use `threads` torch intra-op threads (and as many inter-op threads where torch still allows it)."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel work
        torch.set_num_interop_threads(threads)


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line")


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM) in MiB since start or the last `reset_peak_rss`."""
    return _status_kib("VmHWM") / 1024


def current_rss_mib() -> float:
    """This process's resident memory (VmRSS) now, in MiB."""
    return _status_kib("VmRSS") / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs "5"); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def interleaved(
    calls: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    per_round: int = 1,
    settle_s: float = 0.0,
) -> dict[str, list[float]]:
    """Seconds per call of each named callable: `warmup` untimed calls each, then `rounds` rounds in which
    every callable runs `per_round` times; the order alternates (A B, B A, ...) so drift hits all alike.
    settle_s: an untimed pause before each callable's turn, so that worker threads the previous one left
    spin-waiting (ONNX Runtime's do, for some milliseconds after every run) do not slow the next one."""
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            time.sleep(settle_s)
            for _ in range(per_round):
                start = time.perf_counter()
                calls[name]()
                samples[name].append(time.perf_counter() - start)
    return samples


def latency_rows(
    calls: Mapping[str, Callable[[], Any]], samples: Mapping[str, Sequence[float]], reference: Any, baseline: str
) -> dict[str, dict[str, Any]]:
    """Per backend: its latency (ms), speed-up over `baseline`'s median and how its detections (one more
    call) differ from `reference` (a list of Detections): detections, max box px / score difference,
    count and label mismatches."""
    from detforge.export import compare_detections

    base = summarize(samples[baseline]).median_s
    rows: dict[str, dict[str, Any]] = {}
    for name, call in calls.items():
        t = summarize(samples[name])
        diff = compare_detections(reference, call())
        rows[name] = {
            **t.as_ms(),
            "speedup_vs_torchvision_eager": round(base / t.median_s, 3),
            "detections": diff.detections,
            "max_box_diff_px": round(diff.max_box_diff_px, 6),
            "max_score_diff": round(diff.max_score_diff, 6),
            "count_mismatch": diff.count_mismatch,
            "label_mismatch": diff.label_mismatch,
        }
    return rows


def matmul_peak_gflops(*, size: int = 2048, threads: int = THREADS, runs: int = 7) -> dict[str, float]:
    """This machine's float32 matmul rate: torch.mm of two `size` x `size` matrices on `threads` threads,
    GFLOP/s (2 * size^3 flops per product) at the median and best of `runs` timed products."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=gen)
        b = torch.randn(size, size, generator=gen)
        out = torch.empty(size, size)
        torch.mm(a, b, out=out)
        times = interleaved({"mm": lambda: torch.mm(a, b, out=out)}, rounds=runs, warmup=1)["mm"]
    finally:
        torch.set_num_threads(saved)
    flops = 2.0 * size**3 / 1e9
    return {
        "size": float(size),
        "threads": float(threads),
        "median_gflops": round(flops / statistics.median(times), 1),
        "best_gflops": round(flops / min(times), 1),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(*, with_matmul: bool = True) -> dict[str, Any]:
    """What the numbers were measured on: CPU model, usable cores, load average, memory, versions, torch
    threads and (with `with_matmul`) the measured 2048x2048 float32 matmul peak."""
    import torchvision

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    mem_gib: float | None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        mem_gib = None
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "usable_cpus": cpus,
        "memory_gib": mem_gib,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if with_matmul:
        info["matmul_fp32"] = matmul_peak_gflops()
    return info


def write_result(out_dir: Path, name: str, result: Mapping[str, Any]) -> Path:
    """Write `result` as `out_dir/<name>.json` (atomically; the folder is created) and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    atomic_write_json(path, dict(result))
    return path


def timing_dict(timing: Timing) -> dict[str, float]:
    """`Timing` as a plain dict of seconds."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(timing).items()}


def detforge_cli() -> list[str]:
    """The `detforge` console script of this interpreter's environment (falls back to PATH)."""
    beside = Path(sys.executable).parent / "detforge"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("detforge")
    if found is None:
        raise RuntimeError("the `detforge` command is not installed in this environment")
    return [found]


def eval_curve(events: list[dict[str, Any]]) -> list[dict[str, float]]:
    """A run's validation points from its metrics.jsonl events: seconds since the `start` event, iteration,
    AP, AP50, val loss."""
    start = next((e["time"] for e in events if e.get("event") == "start"), None)
    if start is None:
        raise RuntimeError("metrics.jsonl has no `start` event")
    return [
        {
            "seconds": round(float(e["time"]) - float(start), 1),
            "iteration": int(e["iteration"]),
            "ap": float(e["ap"]),
            "ap50": float(e["ap50"]),
            "val_loss": float(e["val_loss"]),
        }
        for e in events
        if e.get("event") == "eval"
    ]


def detforge_eval(model: Path, data: Path, split: str = "test") -> dict[str, Any]:
    """`detforge eval MODEL DATA --split SPLIT --json` as a whole process: wall seconds, AP / AP50 and the read
    metrics (None when the model does not read). RuntimeError with its stderr when the command fails."""
    cmd = [*detforge_cli(), "eval", str(model), str(data), "--split", split, "--json"]  # stderr is no terminal
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    metrics = out.get("metrics", {})
    read = out.get("read")
    return {
        "command": f"detforge eval RUN/model.pt DATA --split {split} --json",
        "wall_seconds": round(wall, 1),
        "ap": metrics.get("ap"),
        "ap50": metrics.get("ap50"),
        "score_threshold": out.get("score_threshold"),
        "read": None if read is None else {k: v for k, v in read.items() if k != "misreads"},
        "misreads": None if read is None else read.get("misreads", [])[:10],
    }
