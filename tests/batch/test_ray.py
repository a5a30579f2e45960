"""The Ray engine against a local Ray cluster started here (2 CPUs, one session for the module): the same
results as the local engine, and an actor killed mid-job loses and duplicates no image."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import detforge
from detforge.batch.shards import SHARDS_DIR
from detforge.errors import ConfigError
from detforge.inference import PredictionResult

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> object:
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory, model_file: Path, photo_folder: Path) -> list:
    out = tmp_path_factory.mktemp("local") / "out"
    return detforge.predict(model_file, photo_folder, out=out, shard_size=3, device="cpu", progress=False)


def _same(got: list[PredictionResult], expected: list[PredictionResult]) -> None:
    """Same images, each once, with the same detections (labels and texts equal; boxes to 0.01 px and
    scores to 1e-4: torch's float rounding depends on the thread count), in any order."""
    by_source = {r.source: r for r in got}
    assert len(by_source) == len(got) == len(expected), "every image exactly once"
    for want in expected:
        have = by_source[want.source]
        assert have.ok == want.ok and have.image_size == want.image_size
        if want.detections is None or have.detections is None:
            continue
        assert have.detections.labels.tolist() == want.detections.labels.tolist()
        assert have.detections.texts == want.detections.texts
        assert (have.detections.boxes - want.detections.boxes).abs().max().item() < 1e-2
        assert (have.detections.scores - want.detections.scores).abs().max().item() < 1e-4


def test_ray_gives_the_local_results(tmp_path: Path, model_file: Path, photo_folder: Path, local_results) -> None:  # type: ignore[no-untyped-def]
    got = detforge.predict(
        model_file, photo_folder, out=tmp_path / "out", shard_size=3, engine="ray", actors=2, device="cpu"
    )
    _same(got, local_results)
    assert sorted(p.name for p in (tmp_path / "out" / SHARDS_DIR).iterdir()) == [f"{i:06d}.jsonl" for i in range(4)]
    with pytest.raises(ConfigError, match="needs an output folder"):
        detforge.predict(model_file, photo_folder, engine="ray")


def _actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"ShardPredictor" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_killed_actor_loses_and_duplicates_nothing(
    tmp_path: Path, model_file: Path, photo_folder: Path, local_results
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_actor_after_the_first_shard() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if (out / SHARDS_DIR).is_dir() and any((out / SHARDS_DIR).glob("*.jsonl")):
                for pid in _actor_pids()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_actor_after_the_first_shard, daemon=True)
    killer.start()
    try:
        got = detforge.predict(model_file, photo_folder, out=out, shard_size=1, engine="ray", device="cpu")
    except Exception:  # the job may fail with its actor; a second run resumes from the manifest
        got = detforge.predict(model_file, photo_folder, out=out, shard_size=1, engine="ray", device="cpu")
    killer.join()
    assert killed, "an actor was killed mid-job"
    _same(got, local_results)
    assert len(list((out / SHARDS_DIR).glob("*.jsonl"))) == 12


def test_index_on_ray_reads_what_the_local_index_reads(tmp_path: Path, model_file: Path) -> None:
    from batch_fixtures import write_photos

    photos = write_photos(tmp_path / "photos", 4)
    reading = {"read": True, "read_classes": ["cat"], "score_threshold": 0.56, "device": "cpu", "progress": False}
    local = detforge.index(model_file, photos, out=tmp_path / "local", **reading)  # type: ignore[arg-type]
    on_ray = detforge.index(model_file, photos, out=tmp_path / "ray", engine="ray", **reading)  # type: ignore[arg-type]
    assert sum(len(r.values) for r in local.records) > 0, "the test must read some boxes"
    assert [(r.file, r.status, r.value_strings) for r in on_ray.records] == [
        (r.file, r.status, r.value_strings) for r in local.records
    ]
    assert not (tmp_path / "ray" / "ray-job").exists(), "the job's shards are gone once recorded"
    again = detforge.index(model_file, photos, out=tmp_path / "ray", engine="ray", **reading)  # type: ignore[arg-type]
    assert (again.skipped, again.done_now) == (4, 0)
