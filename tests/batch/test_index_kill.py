"""`detforge index` killed with SIGKILL mid-run and run again with the same --out: every photo indexed once,
and index.csv / index.json identical to those of a run that was never interrupted (issue 16)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from batch_fixtures import write_photos
from detforge.indexing import INDEX_CSV, INDEX_JSON, RECORDS_FILE


def _start(model: Path, photos: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "detforge", "index", str(model), str(photos), "--out", str(out)]
    args += ["--read", "--batch-size", "1", "--no-progress", "--device", "cpu"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _records(out: Path) -> int:
    path = out / RECORDS_FILE
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_sigkill_then_resume_indexes_every_photo_once(tmp_path: Path, model_file: Path) -> None:
    photos = write_photos(tmp_path / "photos", 16)
    todo = tmp_path / "todo.txt"  # a path list, with one file that does not exist
    todo.write_text("".join(f"photos/{p.relative_to(photos).as_posix()}\n" for p in sorted(photos.rglob("*.png"))))
    with todo.open("a") as f:
        f.write("photos/missing.png\n")
    reference = _start(model_file, todo, tmp_path / "reference")
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode()

    out = tmp_path / "out"
    process = _start(model_file, todo, out)
    deadline = time.monotonic() + 300
    while _records(out) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed mid-way"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _records(out)
    assert 4 <= killed_at < 17 and not (out / INDEX_JSON).exists()

    final = _start(model_file, todo, out)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    for name in (INDEX_CSV, INDEX_JSON):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert b"missing.png" in (out / INDEX_CSV).read_bytes()
