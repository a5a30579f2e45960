"""A batch job from start to end: open (or resume) the output folder under its manifest, run the shards
not yet written on the chosen engine, and read every result back from the shards."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from detforge.batch.assemble import assemble_results
from detforge.batch.local import run_local
from detforge.batch.manifest import Manifest, prepare_job_folder, start_job_folder
from detforge.batch.shards import SHARDS_DIR, ShardPlan, done_shards
from detforge.errors import ConfigError
from detforge.fileio import remove_partial_writes
from detforge.inference.predictor import PredictionResult, Predictor
from detforge.inference.sources import ImageSource

__all__ = ["ENGINES", "BatchJob", "Engine", "JobOutcome", "RayOptions", "run_job"]

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray job runs: `address` of the cluster (None: start a local one, or use the one
    this process already joined with `ray.init`), `actors` model replicas (None: one per GPU with GPU
    actors, else one per 2 CPUs of the cluster), `cpus_per_actor` (at most; lowered so that the actors
    leave room for a decoding task; it is also the actor's torch thread count), `gpus_per_actor` (None:
    1 when the cluster has GPUs, else 0)."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None


@dataclass(frozen=True)
class BatchJob:
    """What to run: `command` owning the folder ("predict"), the listed `images`, the job's `fingerprint`
    (same fingerprint = same results: resumable), and `shard_size` for a new folder."""

    command: str
    images: tuple[ImageSource, ...]
    fingerprint: str
    shard_size: int = 100

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ConfigError(f"shard_size: expected an int >= 1, got {self.shard_size}")


@dataclass(frozen=True)
class JobOutcome:
    """`results` of every image in listing order, `done_now` images predicted in this run, `skipped` images
    whose shard an earlier run wrote, the `folder` and its `manifest` (with the model's class names)."""

    results: list[PredictionResult]
    done_now: int
    skipped: int
    folder: Path
    manifest: Manifest


def run_job(
    job: BatchJob,
    out: str | Path,
    make_predictor: Callable[[], Predictor],
    *,
    engine: Engine = "local",
    ray: RayOptions | None = None,
    overwrite: bool = False,
    inputs: Sequence[object] = (),
    desc: str = "predict",
) -> JobOutcome:
    """Run `job` into the folder `out`; see `prepare_job_folder` for which folders are taken, resumed or refused.

    Shards already written are skipped without loading the model; the rest run on `engine`: "local" (one
    predictor from `make_predictor` in this process) or "ray" (`make_predictor` called once per actor of a
    Ray Data pipeline; it must be picklable). A bad image is a failed result in its shard, never fatal.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    manifest = Manifest(job.command, job.fingerprint, len(job.images), job.shard_size)
    folder, manifest, fresh = prepare_job_folder(out, manifest, overwrite=overwrite, inputs=inputs)
    plan = ShardPlan(manifest.images, manifest.shard_size)
    done = set() if fresh else done_shards(folder, plan)
    pending = [s for s in range(plan.count) if s not in done]
    predictor = None
    if engine == "local" and (pending or manifest.class_names is None):
        predictor = make_predictor()  # before anything is written: a model that cannot load leaves no folder
    if fresh:
        start_job_folder(folder, manifest)
    remove_partial_writes(folder)
    remove_partial_writes(folder / SHARDS_DIR)
    skipped = sum(len(plan.span(s)) for s in done)
    if skipped:
        log.info("%s: %d of %d images already done; %d to do", folder, skipped, plan.images, plan.images - skipped)
    done_now = sum(len(plan.span(s)) for s in pending)
    if pending or manifest.class_names is None:
        if predictor is None:
            from detforge.batch.ray_engine import run_ray

            names, ids = run_ray(make_predictor, job.images, plan, pending, folder, ray or RayOptions(), desc=desc)
        else:
            names, ids = predictor.class_names, predictor.category_ids
            run_local(predictor, job.images, plan, pending, folder, desc=desc)
        if manifest.class_names is None:
            manifest = replace(manifest, class_names=tuple(names), category_ids=None if ids is None else tuple(ids))
            manifest.save(folder)
    return JobOutcome(assemble_results(folder, plan), done_now, skipped, folder, manifest)
