"""A batch job behind the `predict_many` interface: lets a caller that predicts a stream of images (the index
command) run them as a resumable sharded job on either engine, in a folder of its own."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from detforge.batch.job import BatchJob, Engine, RayOptions, run_job
from detforge.batch.listing import listing_digest
from detforge.batch.manifest import Manifest
from detforge.inference.predictor import PredictionResult, Predictor
from detforge.inference.sources import ImageSource

__all__ = ["ShardedPredictor"]


class ShardedPredictor:
    """`predict_many(sources)` runs `sources` as one batch job in `folder` on `engine` and yields every result
    (in source order) once the job is done; `fingerprint` names what decides the results (with the listing
    it makes the job id, so a killed call resumes when called again with the same sources). The folder is
    removed after a job that finished. `make_predictor` is called per actor on Ray (picklable)."""

    def __init__(
        self,
        make_predictor: Callable[[], Predictor],
        folder: Path,
        fingerprint: str,
        *,
        command: str,
        engine: Engine = "ray",
        ray: RayOptions | None = None,
        shard_size: int = 100,
    ) -> None:
        self.make_predictor = make_predictor
        self.folder = folder
        self.fingerprint = fingerprint
        self.command = command
        self.engine = engine
        self.ray = ray
        self.shard_size = shard_size

    def predict_many(
        self, sources: Iterable[ImageSource], *, on_error: Literal["report", "raise", "skip"] = "report"
    ) -> Iterator[PredictionResult]:
        images = tuple(sources)
        if not images:
            return
        job_id = hashlib.sha256(f"{self.fingerprint}\0{listing_digest(images)}".encode()).hexdigest()[:16]
        job = BatchJob(self.command, images, job_id, self.shard_size)
        earlier = Manifest.load(self.folder) if self.folder.is_dir() else None
        if earlier is not None and earlier.fingerprint != job_id:
            shutil.rmtree(self.folder)  # a killed call's job over other images: of no use now
        outcome = run_job(job, self.folder, self.make_predictor, engine=self.engine, ray=self.ray, overwrite=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        for result in outcome.results:
            if result.ok or on_error == "report":
                yield result
