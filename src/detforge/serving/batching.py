"""Dynamic batching: concurrent requests are gathered into one forward pass run on a worker thread (or, for
a large batch of a CPU torch model, into small parts run at once by one single-threaded worker per core:
see compute.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
from torch import Tensor

from detforge.serving.compute import ComputePlan, can_split, pin_thread
from detforge.serving.reload import LoadedModel, ModelHolder
from detforge.structures.detections import Detections

__all__ = ["BatchResult", "Batcher", "QueueFull", "ShuttingDown"]

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batch queue holds `queue_size` images already."""


class ShuttingDown(Exception):
    """The batcher is draining and takes no new images."""


@dataclass(frozen=True)
class BatchResult:
    """Detections of one image, the model that made them, and times in ms (queue wait, forward pass)."""

    detections: Detections
    model: LoadedModel
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class _Job:
    image: Tensor
    future: asyncio.Future[BatchResult]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collects submitted images into batches of up to `max_batch`, waiting at most `max_wait_ms` after the
    first (0: takes what is queued and runs at once), and runs each batch as one `predict_tensors` call on
    a single worker thread with the model `holder` has when the batch starts. At most `queue_size` images
    wait; `submit` raises QueueFull beyond.

    plan: the worker's intra-op threads, and how many single-threaded workers share a batch of a CPU torch
    model that holds at least that many images (default: torch's current thread count, never split).
    Use inside a running event loop: `start()`, `await submit(image)`, `await drain()`.
    `on_batch(size)` and `on_depth(depth)` are called for metrics.
    """

    def __init__(
        self,
        holder: ModelHolder,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 0.0,
        queue_size: int = 64,
        on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        plan: ComputePlan | None = None,
    ) -> None:
        self.holder = holder
        self.plan = plan or ComputePlan(threads=torch.get_num_threads())
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self._on_batch = on_batch or (lambda n: None)
        self._on_depth = on_depth or (lambda n: None)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._parts: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Images waiting for a batch."""
        return 0 if self._queue is None else self._queue.qsize()

    def start(self) -> None:
        if self._task is not None:
            return
        self._closing = False
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="detforge-batch", initializer=pin_thread, initargs=(self.plan.threads,)
        )
        if self.plan.split > 1:
            self._parts = ThreadPoolExecutor(
                max_workers=self.plan.split, thread_name_prefix="detforge-part", initializer=pin_thread, initargs=(1,)
            )
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="detforge-batcher")

    async def run_in_worker(self, fn: Callable[[], object]) -> object:
        """Run `fn` on the worker thread (between batches), e.g. a warm-up forward pass."""
        assert self._executor is not None, "Batcher.start() first"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def submit(self, image: Tensor) -> BatchResult:
        """Detections of one uint8 [3, H, W] image, once its batch has run. QueueFull, ShuttingDown, or the
        predictor's exception. Cancelling the await (a timeout) drops the image if its batch has not started."""
        if self._queue is None or self._closing:
            raise ShuttingDown("the server is shutting down")
        job = _Job(image, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull(f"{self.queue_size} images are already waiting") from None
        self._on_depth(self._queue.qsize())
        return await job.future

    async def _collect(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        batch = [await queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        assert self._queue is not None and self._executor is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            self._on_depth(queue.qsize())
            live = [job for job in batch if not job.future.done()]  # timed-out requests are dropped
            if live:
                await self._run(live, loop)
            for _ in batch:
                queue.task_done()

    async def _run(self, jobs: list[_Job], loop: asyncio.AbstractEventLoop) -> None:
        assert self._executor is not None
        model = self.holder.current()
        started = time.perf_counter()
        self._on_batch(len(jobs))
        try:
            outputs = await self._forward(model, [job.image for job in jobs], loop)
            if len(outputs) != len(jobs):
                raise RuntimeError(f"predictor returned {len(outputs)} results for {len(jobs)} images")
        except Exception as exc:
            log.error("batch of %d failed: %s: %s", len(jobs), type(exc).__name__, exc)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        inference_ms = (time.perf_counter() - started) * 1000.0
        for job, dets in zip(jobs, outputs, strict=True):
            if not job.future.done():
                queue_ms = (started - job.enqueued) * 1000.0
                job.future.set_result(BatchResult(dets, model, queue_ms, inference_ms, len(jobs)))

    async def _forward(
        self, model: LoadedModel, images: list[Tensor], loop: asyncio.AbstractEventLoop
    ) -> list[Detections]:
        assert self._executor is not None
        split = self.plan.split
        if self._parts is None or len(images) < split or not can_split(model.predictor):
            return await loop.run_in_executor(self._executor, model.predictor.predict_tensors, images)
        size = min(self.plan.part_images, -(-len(images) // split))  # every worker gets a part
        parts = [images[i : i + size] for i in range(0, len(images), size)]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._parts, model.predictor.predict_tensors, part) for part in parts)
        )
        return [dets for part in done for dets in part]

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Stop taking images, finish every queued one (up to `timeout_s`), then stop the worker."""
        self._closing = True
        if self._queue is not None and self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except asyncio.TimeoutError:
                log.warning("batcher: %d images still queued after %.0f s; dropping them", self.depth, timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(ShuttingDown("the server is shutting down"))
        for executor in (self._executor, self._parts):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._task, self._queue, self._executor, self._parts = None, None, None, None
