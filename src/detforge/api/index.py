"""`detforge.index(...)`: read the values on every photo of a folder, write an index in reading order, sort
copies of the photos into folders by value; a second run skips what is done."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.ranges import FRACTION, POSITIVE_INT, check_numbers

if TYPE_CHECKING:
    from detforge.indexing import IndexSummary
    from detforge.inference import Predictor
    from detforge.reading import Reader

__all__ = ["index"]


def _fingerprint(model: Any, predictor: Predictor) -> str:
    """An id of what decides the values read: the model file (path, size, modification time) or the model
    object's type, the class names, the score threshold, the reading settings and the recogniser's type."""
    if isinstance(model, str | Path):
        path = Path(model).resolve()
        stat = path.stat()
        origin: Any = [str(path), stat.st_size, stat.st_mtime_ns]
    else:
        origin = type(predictor.model).__name__
    settings = predictor.read_settings.to_dict() if predictor.read_settings is not None else None
    parts = [origin, list(predictor.class_names), predictor.score_threshold, settings, type(predictor.reader).__name__]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def index(
    model: str | Path | Predictor,
    source: str | Path,
    *,
    out: str | Path,
    sort_into: str | Path | None = None,
    overwrite: bool = False,
    read: bool | None = None,
    read_classes: Sequence[str] | None = None,
    read_pattern: str | None = None,
    read_allow: str | None = None,
    reader: Reader | None = None,
    score_threshold: float | None = None,
    batch_size: int = 4,
    device: str = "auto",
    runtime: str = "auto",
    engine: str = "local",
    ray_address: str | None = None,
    actors: int | None = None,
    progress: bool = True,
) -> IndexSummary:
    """Index the photos of `source` into the folder `out`; see docs/index.md. `source`: a folder (searched
    recursively), a glob pattern (`scans/**/*.jpg`), or a `.txt` / `.lst` file listing image paths, one a
    line (a listed file that is missing is recorded as an error naming it; the rest are indexed).

    `model`: a model artifact (`model.pt`), an exported `.onnx` / `.ts` file, or a ready `Predictor` (then
    the reading, threshold, batch, device and runtime keywords must stay at their defaults). Reading uses
    the model's stored settings; `read` True reads a model trained without transcriptions (every class, or
    `read_classes`); `read_pattern` / `read_allow` override the stored pattern and allow-list; `reader` is a
    recogniser of your own (a `detforge.reading.Reader`). `score_threshold` overrides the model's detection
    threshold. `progress`: a progress bar on stderr when it is a terminal.

    Writes `out/index.csv`, `out/index.json` (per photo: values read in reading order with boxes and
    confidences, and a status read / unsure / nothing / error) and `out/records.jsonl` (the per-photo
    records a second run resumes from). With `sort_into`, copies each photo into `sort_into/<value>/`,
    unsure ones into `sort_into/_review/` with CVAT and Label Studio pre-annotations, and photos with
    nothing found into `sort_into/_nothing/`. The photos are never modified. Returns an `IndexSummary`.
    ConfigError for a model that does not read text, a folder without photos, or overlapping folders.
    `out` must be new, empty or the index of the same photo folder (continued); another folder is refused
    (OutputFolderError) unless `overwrite`, which clears it first.

    `engine` "ray" predicts and reads the photos still to do on Ray (docs/batch.md: `ray_address`, `actors`;
    a model file, not a ready Predictor), in resumable shards under `out/ray-job/`, then records them.
    """
    check_numbers(score_threshold=(FRACTION, score_threshold), batch_size=(POSITIVE_INT, batch_size))
    from detforge.api._predictor import make_predictor
    from detforge.errors import ConfigError
    from detforge.indexing import IndexSettings, run_index
    from detforge.inference import Predictor

    if isinstance(model, Predictor):
        given = {
            "read": read,
            "read_classes": read_classes,
            "read_pattern": read_pattern,
            "read_allow": read_allow,
            "reader": reader,
            "score_threshold": score_threshold,
        }
        changed = [k for k, v in given.items() if v is not None]
        changed += [
            k
            for k, v, d in (("batch_size", batch_size, 4), ("device", device, "auto"), ("runtime", runtime, "auto"))
            if v != d
        ]
        if changed:
            raise ConfigError(f"index: {', '.join(changed)} cannot apply to a ready Predictor; configure the Predictor")
        predictor = model
    else:
        predictor = make_predictor(
            model,
            read=read,
            read_classes=read_classes,
            read_pattern=read_pattern,
            read_allow=read_allow,
            reader=reader,
            score_threshold=score_threshold,
            runtime=runtime,
            batch_size=batch_size,
            device=device,
        )
    if predictor.reader is None or predictor.read_settings is None:
        name = model if isinstance(model, str | Path) else "the predictor"
        raise ConfigError(
            f"{name}: does not read text (trained without transcriptions, or reading off); pass --read to read "
            "every class, or --read-classes NAME ... (read=True / read_classes=[...] in Python)"
        )
    settings = IndexSettings(predictor.class_names, predictor.read_settings, _fingerprint(model, predictor))
    runner: Any = predictor
    if engine == "ray":
        opening = {
            "read": read,
            "read_classes": read_classes,
            "read_pattern": read_pattern,
            "read_allow": read_allow,
            "reader": reader,
            "score_threshold": score_threshold,
            "runtime": runtime,
            "batch_size": batch_size,
            "device": device,
        }
        runner = _on_ray(model, Path(out), settings.fingerprint, ray_address, actors, opening)
    elif engine != "local":
        raise ConfigError(f"engine {engine!r}: expected 'local' or 'ray'")
    return run_index(runner, source, out, settings, sort_into=sort_into, overwrite=overwrite, progress=progress)


def _on_ray(
    model: Any,
    out: Path,
    fingerprint: str,
    ray_address: str | None,
    actors: int | None,
    opening: dict[str, Any],
) -> Any:
    """A `ShardedPredictor` running the index's predictions on Ray, each actor opening `model` with the
    `make_predictor` keywords `opening` (the index call's reading, threshold, runtime, batch and device)."""
    import functools

    from detforge.api import _predictor
    from detforge.batch.as_predictor import ShardedPredictor
    from detforge.batch.job import RayOptions
    from detforge.errors import ConfigError

    if not isinstance(model, str | Path):
        raise ConfigError("index: engine 'ray' needs a model file (each actor loads it), not a ready Predictor")
    opener = functools.partial(_predictor.make_predictor, model, **opening)
    cpu_only = opening["device"] == "cpu"
    ray = RayOptions(address=ray_address, actors=actors, gpus_per_actor=0.0 if cpu_only else None)
    return ShardedPredictor(opener, out / "ray-job", fingerprint, command="index", engine="ray", ray=ray)
