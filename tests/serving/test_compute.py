"""CPU threads of the service: one multi-threaded worker, large CPU batches split over single-threaded parts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import torch
from torch import Tensor

from detforge.inference import Predictor
from detforge.models.build import build_detector
from detforge.serving import Batcher, LoadedModel, ModelHolder
from detforge.serving.compute import ComputePlan, can_split, pin_thread, plan_threads, usable_cores
from detforge.structures.detections import Detections


@pytest.fixture
def main_threads() -> Any:
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def test_pinning_is_per_thread_and_survives_torchs_lazy_start(main_threads: None) -> None:
    narrow = ThreadPoolExecutor(1, initializer=pin_thread, initargs=(1,))
    wide = ThreadPoolExecutor(1, initializer=pin_thread, initargs=(3,))
    try:
        narrow.submit(lambda: None).result()  # pinned to 1 ...
        assert wide.submit(torch.get_num_threads).result() == 3  # ... then another thread sets 3 after it
        # torch's first use in a thread resets the count from the last value any thread set: without the
        # lazy start first, the narrow worker would now run with 3 threads.
        assert (
            narrow.submit(lambda: (torch.ones(64, 64) @ torch.ones(64, 64), torch.get_num_threads())[1]).result() == 1
        )
    finally:
        narrow.shutdown()
        wide.shutdown()
    assert torch.get_num_threads() == 2  # the calling thread kept its own


def test_plan_uses_torchs_threads_capped_at_the_cores(main_threads: None) -> None:
    assert plan_threads(1) == ComputePlan(threads=1, split=1)
    assert plan_threads(10_000).threads == usable_cores()
    assert plan_threads().threads == min(2, usable_cores())
    with pytest.raises(ValueError, match=r"ComputePlan\.split"):
        ComputePlan(threads=2, split=0)


def test_only_a_cpu_torch_model_is_split() -> None:
    detector, _ = build_detector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=1, weights="none", min_size=64, max_size=96
    )
    assert can_split(Predictor(detector, class_names=["a"], device="cpu"))

    class OnnxLike:  # ONNX Runtime and CUDA keep their own parallelism
        device = torch.device("cpu")
        model = object()

    assert not can_split(OnnxLike())
    assert not can_split(object())


_TEAMS = textwrap.dedent(
    """
    import os, sys, threading, torch
    from concurrent.futures import ThreadPoolExecutor
    from detforge.serving.compute import pin_thread, reserve_main_thread
    from detforge.serving.limits import decode_upload

    def threads():
        return len(os.listdir("/proc/self/task"))

    def work():
        return float((torch.rand(1500, 1500) * 2).sum())  # large enough for a parallel region

    torch.set_num_threads(2)
    base = threads()
    if sys.argv[1] == "unpinned":
        work()
        print(threads() - base)
        raise SystemExit
    plan = reserve_main_thread()
    work()  # loading a model on the main thread
    main = threads() - base
    seen = []
    pool = ThreadPoolExecutor(1, initializer=pin_thread, initargs=(plan.threads,))
    pool.submit(work).result()
    worker = threads() - base
    upload = open(sys.argv[2], "rb").read()
    def decode():
        before = threads()
        decode_upload(upload, 50_000_000)
        seen.append(threads() - before)
    t = threading.Thread(target=decode)
    t.start(); t.join()
    print(plan.threads, main, worker, seen[0])
    """
)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts OS threads through /proc")
def test_the_service_keeps_one_openmp_team(tmp_path: Any, image_bytes: Any) -> None:
    # Two OpenMP teams on a 2-core machine made libgomp stop spinning between parallel regions: a model loaded
    # on the main thread then served from the worker ran 1.6x slower (74 vs 47 ms per image).
    upload = tmp_path / "u.jpg"
    upload.write_bytes(image_bytes(1200, 900, fmt="JPEG"))  # big enough for a parallel copy in torch
    script = tmp_path / "teams.py"
    script.write_text(_TEAMS)

    def run(*args: str) -> list[int]:
        out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return [int(v) for v in out.stdout.split()]

    if run("unpinned") != [1]:
        pytest.skip("this torch build does not start an OpenMP team per thread")
    threads, main, worker, decode = run("pinned", str(upload))
    assert threads == min(2, usable_cores())
    assert main == 0  # the main thread, pinned to one thread, started no team
    assert worker == 1 + (threads - 1)  # the worker thread and its own team
    assert decode == 0  # decoding an upload adds no team


class _CpuTorchPredictor:
    """A CPU 'torch' predictor that records, per call, the thread, its torch threads and the batch size."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake()
        self.class_names = self.fake.class_names
        self.score_threshold = self.fake.score_threshold
        self.device = torch.device("cpu")
        self.model = torch.nn.Identity()
        self.calls: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]:
        with self._lock:
            self.calls.append((threading.current_thread().name, torch.get_num_threads(), len(images)))
        return list(self.fake.predict_tensors(images))


def _submit_all(batcher: Batcher, sizes: list[int]) -> list[tuple[int, int]]:
    async def main() -> list[tuple[int, int]]:
        batcher.start()
        images = [torch.zeros((3, s, 8), dtype=torch.uint8) for s in sizes]
        results = await asyncio.gather(*(batcher.submit(im) for im in images))
        await batcher.drain()
        return [r.detections.image_size for r in results]

    return asyncio.run(main())


def test_a_large_cpu_batch_runs_as_single_threaded_parts_at_once(fake_predictor: Any, main_threads: None) -> None:
    predictor = _CpuTorchPredictor(fake_predictor)
    plan = ComputePlan(threads=2, split=2)
    batcher = Batcher(ModelHolder(LoadedModel(predictor, name="m")), max_batch=8, plan=plan)
    sizes = [10 + i for i in range(5)]
    assert _submit_all(batcher, sizes) == [(s, 8) for s in sizes]  # every request got its own image's result
    parts = sorted((threads, n) for name, threads, n in predictor.calls if name.startswith("detforge-part"))
    assert parts == [(1, 1), (1, 2), (1, 2)]  # single-threaded parts of <= 2 images (any worker may run any)
    assert sum(n for *_, n in predictor.calls) == 5


def test_a_lone_image_uses_every_thread_of_the_worker(fake_predictor: Any, main_threads: None) -> None:
    predictor = _CpuTorchPredictor(fake_predictor)
    batcher = Batcher(ModelHolder(LoadedModel(predictor, name="m")), max_batch=8, plan=ComputePlan(threads=2, split=2))
    assert _submit_all(batcher, [12]) == [(12, 8)]
    assert predictor.calls == [("detforge-batch_0", 2, 1)]


def test_other_predictors_are_never_split(fake_predictor: Any, main_threads: None) -> None:
    predictor = fake_predictor()
    batcher = Batcher(ModelHolder(LoadedModel(predictor, name="m")), max_batch=8, plan=ComputePlan(threads=2, split=2))
    assert _submit_all(batcher, [10, 11, 12, 13]) == [(s, 8) for s in (10, 11, 12, 13)]
    assert predictor.batches == [4]
