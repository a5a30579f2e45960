"""How the service spends CPU threads on forward passes.

PyTorch's CPU kernels run on OpenMP, and every OS thread that runs a multi-threaded kernel gets its own
OpenMP team. Once the teams together hold more threads than the machine has cores, libgomp stops
spinning between parallel regions and every region pays a sleep/wake-up (a model loaded on the main
thread and run on a worker thread is then markedly slower). So the service keeps exactly one multi-threaded thread (the
batch worker); every other thread that touches torch (main, decoding, hot reload) is pinned to one.

On a CPU with a torch model, a batch with at least as many images as cores is split into parts of at
most `part_images` images, run by one single-threaded worker per core at once: small convolutions scale
poorly over threads, so parallelising over images is faster. The measurements behind both rules are in
benchmarks/README.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["ComputePlan", "can_split", "pin_thread", "plan_threads", "reserve_main_thread", "usable_cores"]


@dataclass(frozen=True)
class ComputePlan:
    """threads: intra-op threads of one forward pass on the batch worker (>= 1).
    split: a batch of at least `split` images of a CPU torch model runs on `split` single-threaded workers
    at once (1: never split), in parts of at most `part_images` images (fewer when that leaves a worker
    idle)."""

    threads: int
    split: int = 1
    part_images: int = 2

    def __post_init__(self) -> None:
        for key in ("threads", "split", "part_images"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ComputePlan.{key}: expected an integer >= 1, got {value!r}")


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def plan_threads(threads: int | None = None) -> ComputePlan:
    """The plan for `threads` intra-op threads (default: torch's current setting in this thread): one
    part per thread when there are at least 2, capped at the usable cores."""
    threads = torch.get_num_threads() if threads is None else threads
    threads = max(1, min(int(threads), usable_cores()))
    return ComputePlan(threads=threads, split=threads)


def pin_thread(threads: int) -> None:
    """Make the calling thread's torch ops use `threads` intra-op threads (OpenMP's setting is per OS thread;
    torch's first use in a thread would otherwise reset it from the last value set by any thread)."""
    torch.get_num_threads()  # torch's per-thread lazy initialisation first, so it cannot undo the next line
    torch.set_num_threads(threads)


def reserve_main_thread() -> ComputePlan:
    """The plan for torch's current thread count, then pin the calling (main) thread to one thread, so that
    loading and warming a model there creates no second OpenMP team. Call before loading the model."""
    plan = plan_threads()
    pin_thread(1)
    return plan


def can_split(predictor: object) -> bool:
    """True when `predictor` runs a torch model on the CPU (parts of a batch may then run at once on
    single-threaded workers); ONNX Runtime and CUDA keep their own parallelism."""
    device = getattr(predictor, "device", None)
    model = getattr(predictor, "model", None)
    return isinstance(device, torch.device) and device.type == "cpu" and isinstance(model, torch.nn.Module)
