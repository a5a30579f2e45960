"""The Ray engine: the pending shards as a Ray Data pipeline. One row per shard; CPU tasks read and decode
its images, an actor pool runs the model (one predictor per actor, built by the job's picklable
`make_predictor`; reading in the same actor) and each actor writes the shard file itself, atomically, so a
retried shard (an actor died) is written once. Ray is imported only here, when the engine is asked for."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from detforge.batch.decode import decode_shard
from detforge.batch.result_json import result_to_dict
from detforge.batch.shards import ShardPlan, write_shard
from detforge.errors import ConfigError
from detforge.inference.predictor import PredictionResult, Predictor
from detforge.inference.sources import ImageSource
from detforge.progress import track

__all__ = ["ShardPredictor", "run_ray"]

log = logging.getLogger(__name__)

DECODE_CPUS = 0.25
"""Logical CPUs a decoding task reserves (it holds a core only while decoding; actors hold theirs)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "engine 'ray': Ray is not installed; pip install 'detforge[ray]' (or run with --engine local)"
        ) from None
    return ray


class ShardPredictor:
    """A Ray Data actor: one predictor for its lifetime; predicts the decoded images of each shard row it is
    given, writes that shard's file into `out` and returns {shard, images, class_names, category_ids}."""

    def __init__(self, make_predictor: Callable[[], Predictor], out: str, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.predictor = make_predictor()
        self.out = Path(out)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        shards, counts = [], []
        for shard, blob in zip(batch["shard"], batch["images"], strict=True):
            decoded = pickle.loads(blob)
            good = [ImageSource(name, array=pixels) for name, _, pixels in decoded if not isinstance(pixels, str)]
            found = iter(self.predictor.predict_many(good, on_error="report"))
            results = []
            for name, path, pixels in decoded:
                if isinstance(pixels, str):
                    results.append(PredictionResult(name, None, None, pixels, Path(path)))
                else:
                    r = next(found)
                    results.append(PredictionResult(r.source, r.image_size, r.detections, r.error, Path(path)))
            write_shard(self.out, int(shard), [result_to_dict(r) for r in results])
            shards.append(int(shard))
            counts.append(len(results))
        names = [list(self.predictor.class_names)] * len(shards)
        ids = [list(self.predictor.category_ids or ())] * len(shards)
        return {"shard": shards, "images": counts, "class_names": names, "category_ids": ids}


def _actors(ray: Any, wanted: int | None, gpus_per_actor: float) -> int:
    if wanted is not None:
        return wanted
    resources = ray.cluster_resources()
    if gpus_per_actor > 0:
        return max(1, int(resources.get("GPU", 0) // gpus_per_actor))
    return max(1, int(resources.get("CPU", 1) // 2))


def run_ray(
    make_predictor: Callable[[], Predictor],
    images: Sequence[ImageSource],
    plan: ShardPlan,
    pending: Sequence[int],
    out: Path,
    options: Any,
    *,
    desc: str,
) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
    """Run the `pending` shards of `plan` on Ray (`options`: a `RayOptions`), the shard files written into
    `out` by the actors; a bar with images/s and ETA on stderr. Returns the model's class names and
    category ids. ConfigError when Ray is not installed or an image is not a file."""
    in_memory = [im.name for im in images if im.path is None]
    if in_memory:
        raise ConfigError(f"engine 'ray': takes image files only; {in_memory[0]} is an in-memory image")
    if not pending:
        predictor = make_predictor()
        return tuple(predictor.class_names), predictor.category_ids
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(address=options.address, logging_level=logging.WARNING, include_dashboard=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    gpus = options.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    actors = _actors(ray, options.actors, gpus)
    cpus_total = float(ray.cluster_resources().get("CPU", 1))
    cpus = min(options.cpus_per_actor, max(0.1, (cpus_total - DECODE_CPUS) / actors))  # room for a decoding task
    rows = [
        {
            "shard": s,
            "names": [images[i].name for i in plan.span(s)],
            "paths": [str(Path(str(images[i].path)).absolute()) for i in plan.span(s)],
        }
        for s in pending
    ]
    log.info("ray: %d shards on %d actors (%.2f CPU, %s GPU each)", len(rows), actors, cpus, gpus)
    data = ray.data.from_items(rows, override_num_blocks=len(rows))
    data = data.map(decode_shard, num_cpus=DECODE_CPUS)
    data = data.map_batches(
        ShardPredictor,
        fn_constructor_args=(make_predictor, str(out), max(1, round(cpus))),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=gpus,
    )
    names: tuple[str, ...] = ()
    ids: tuple[int, ...] | None = None

    def per_image() -> Iterator[None]:
        nonlocal names, ids
        for row in data.iter_rows():
            names = tuple(str(n) for n in row["class_names"])
            ids = tuple(int(i) for i in row["category_ids"]) or None
            for _ in range(int(row["images"])):
                yield None

    total = sum(len(plan.span(s)) for s in pending)
    for _ in track(per_image(), desc=desc, total=total):
        pass
    return names, ids
