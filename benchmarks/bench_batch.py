"""Batch prediction throughput: plain prediction, the resumable sharded local engine, and Ray Data with 1 and
2 actors, over the same generated photos on this machine; the shards' and manifest's overhead; a resume's cost.

Model: a random-weight SSDlite320 MobileNetV3 artifact, 2 classes (tests/batch_fixtures.make_artifact: the
fastest detector on this CPU, so the engines' own costs are not drowned by the model). Photos: N generated
160x120 PNGs (noise with a bright square; N = 1,000, quick: 60), written once. 2 torch threads in this process.

What is timed (wall clock, model loaded beforehand except where said):
- plain: `Predictor.predict_many(folder)` into a list, then the COCO results file and the CSV written from it
  (what `predict --out` did before shards: no manifest, no shard files, nothing to resume).
- resumable local: `run_job` into a fresh folder with the same, already loaded predictor (listing, manifest,
  one atomic JSON Lines shard per N / 12 photos, reading every result back from the shards), then the same COCO
  and CSV files. plain and resumable run in ABBA order (best of 2 each; `overhead_end_to_end` = resumable /
  plain - 1, at the mercy of the shared machine's load).
- engine cost: the same two runs with the model replaced by a replay of its results (no model time), best
  of 3 each; the difference is what the listing, manifest, shard files and reading them back add; the
  overhead is that difference / the plain run's time (goal < 5%).
- resume: the resumable run again on its finished folder: listing, manifest, every shard skipped (the
  model is not used), all results read back from the shards and the COCO and CSV files rewritten;
  images/s = N / time (goal > 1,000 images/s).
- Ray 1 / 2 actors: `detforge.predict(..., engine="ray", actors=k)` into a fresh folder, on a local Ray cluster
  of 2 CPUs started beforehand (`ray.init` not timed; actor start-up and model loading are timed: they are
  part of every Ray job). Decoding in Ray tasks, the model in the actors (1 torch thread each), shards
  written by the actors. Skipped when Ray is not installed.

    python benchmarks/bench_batch.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for extra in (HERE, HERE.parent / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from _common import THREADS, machine_info, set_threads, write_result  # noqa: E402

import detforge  # noqa: E402
from batch_fixtures import make_artifact, write_photos  # noqa: E402


def _plain(predictor: Any, photos: Path, out: Path) -> float:
    from detforge.inference import write_coco_results, write_csv

    start = time.perf_counter()
    results = list(predictor.predict_many(str(photos), on_error="report"))
    write_coco_results(results, out / "predictions.json", category_ids=predictor.category_ids)
    write_csv(results, out / "predictions.csv", predictor.class_names)
    return time.perf_counter() - start


def _resumable(predictor: Any, photos: Path, out: Path, shard_size: int) -> float:
    from detforge.batch.job import BatchJob, run_job
    from detforge.batch.listing import list_images, listing_digest
    from detforge.inference import write_coco_results, write_csv

    start = time.perf_counter()
    images = list_images(photos)
    job = BatchJob("predict", tuple(images), listing_digest(images), shard_size)
    outcome = run_job(job, out, lambda: predictor)
    write_coco_results(outcome.results, out / "predictions.json", category_ids=predictor.category_ids)
    write_csv(outcome.results, out / "predictions.csv", predictor.class_names)
    return time.perf_counter() - start


class _Replay:
    """Stands in for the model: yields results computed before (no model time), so that what is timed is the
    engine's own work only."""

    def __init__(self, predictor: Any, results: list[Any]) -> None:
        self.class_names, self.category_ids = predictor.class_names, predictor.category_ids
        self.by_source = {r.source: r for r in results}

    def predict_many(self, sources: Any, *, on_error: str = "report") -> Any:
        from detforge.batch.listing import list_images

        items = sources if isinstance(sources, list | tuple) else list_images(sources)
        return (self.by_source[s.name] for s in items)


def _engine_cost(predictor: Any, photos: Path, root: Path, shard_size: int, rounds: int) -> float:
    """Seconds the resumable engine adds to a run over plain prediction, with the model replaced by a replay
    of its results: best of `rounds` of (run_job + files) minus best of (predict_many + files)."""
    replay = _Replay(predictor, list(predictor.predict_many(str(photos), on_error="report")))
    plain, sharded = [], []
    for i in range(rounds):
        out = root / f"replay_plain_{i}"
        out.mkdir()
        plain.append(_plain(replay, photos, out))
        sharded.append(_resumable(replay, photos, root / f"replay_sharded_{i}", shard_size))
    return max(0.0, min(sharded) - min(plain))


def _ray(model: Path, photos: Path, out: Path, actors: int, shard_size: int) -> float:
    start = time.perf_counter()
    detforge.predict(model, photos, out=out, engine="ray", actors=actors, shard_size=shard_size, progress=False)
    return time.perf_counter() - start


def main(out_dir: Path, *, quick: bool) -> dict[str, Any]:
    """Images/s of each engine and the overhead / resume figures; writes `out_dir/batch.json`."""
    from detforge.api._predictor import make_predictor

    set_threads(THREADS)
    n = 60 if quick else 1000
    shard_size = n // 12  # 12 shards: work for 2 actors, and the shard files' cost shows
    result: dict[str, Any] = {"benchmark": "batch", "photos": n, "photo_size": "160x120", "shard_size": shard_size}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        root = Path(tmp)
        model = make_artifact(root / "model.pt")
        photos = write_photos(root / "photos", n, size=(160, 120))
        predictor = make_predictor(model, device="cpu")
        list(predictor.predict_many([str(p) for p in sorted(photos.glob("*.png"))[:4]]))  # warm-up
        seconds: dict[str, list[float]] = {"plain": [], "resumable": []}
        for i, name in enumerate(("plain", "resumable", "resumable", "plain")):
            out = root / f"out_{i}"
            if name == "plain":
                out.mkdir()
                seconds[name].append(_plain(predictor, photos, out))
            else:
                seconds[name].append(_resumable(predictor, photos, out, shard_size))
        resume_s = _resumable(predictor, photos, root / "out_2", shard_size)  # finished: every shard is skipped
        engine_s = _engine_cost(predictor, photos, root, shard_size, rounds=3)
        plain, resumable = min(seconds["plain"]), min(seconds["resumable"])
        result["seconds"] = {k: [round(v, 3) for v in vs] for k, vs in seconds.items()}
        result["images_per_s"] = {"plain": round(n / plain, 2), "resumable_local": round(n / resumable, 2)}
        result["overhead_end_to_end"] = round(resumable / plain - 1, 4)
        result["engine_seconds"] = round(engine_s, 3)
        result["overhead"] = round(engine_s / plain, 4)
        result["resume_images_per_s"] = round(n / resume_s, 1)
        try:
            import ray
        except ImportError:
            result["ray"] = "skipped: Ray is not installed (pip install 'detforge[ray]')"
        else:
            ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
            try:
                for actors in (1, 2):
                    took = _ray(model, photos, root / f"ray_{actors}", actors, shard_size)
                    result["images_per_s"][f"ray_{actors}_actor{'s' if actors > 1 else ''}"] = round(n / took, 2)
            finally:
                ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    result["machine"] = machine_info(with_matmul=False)
    result["rows"] = _rows(result)
    write_result(out_dir, "batch", result)
    return result


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The results.md table: images/s per engine against plain prediction, the overhead and the resume rate."""
    rates = result["images_per_s"]
    plain = rates["plain"]
    note = f"{result['photos']} generated {result['photo_size']} photos, SSDlite320 random weights, 2-CPU machine"
    rows: list[dict[str, Any]] = []
    for name, rate in rates.items():
        rows.append(
            {
                "case": f"images/s, {name.replace('_', ' ')}",
                "detforge": rate,
                "peer": plain if name != "plain" else None,
                "unit": "images/s",
                "ratio": round(rate / plain, 3) if name != "plain" else None,
                "detforge_loses": name != "plain" and rate < plain,
                "note": note + ("; Ray: actor start-up included" if name.startswith("ray") else ""),
            }
        )
    rows.append(
        {
            "case": "shard + manifest overhead (resumable local vs plain)",
            "detforge": result["overhead"],
            "unit": "fraction of plain time",
            "goal": "< 0.05",
            "meets_goal": result["overhead"] < 0.05,
            "note": f"engine's own work {result['engine_seconds']} s (model replayed, best of 3) / plain run; "
            f"end to end, best of 2 ABBA: {result['overhead_end_to_end']:+.3f} (machine load)",
        }
    )
    rows.append(
        {
            "case": "resume of a finished job",
            "detforge": result["resume_images_per_s"],
            "unit": "images/s",
            "goal": "> 1000",
            "meets_goal": result["resume_images_per_s"] > 1000,
            "note": "listing, manifest, all shards skipped, results read back, COCO and CSV rewritten",
        }
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="60 photos")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    res = main(cli.out, quick=cli.quick)
    print({k: res[k] for k in ("images_per_s", "overhead", "resume_images_per_s")})
