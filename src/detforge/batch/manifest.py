"""The manifest of a batch job (`OUT/manifest.json`): which job the folder holds (a fingerprint of the model,
the settings that decide the results and the image listing), how many images, and the shard size. A run
with the same job resumes the folder; another job is refused unless `overwrite` clears it first."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.fileio import atomic_write_json
from detforge.outdir import MARKER, OutputFolderError, check_output_folder, written_by

__all__ = ["MANIFEST_FILE", "MANIFEST_VERSION", "Manifest", "prepare_job_folder", "start_job_folder"]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """`command` that owns the folder, job `fingerprint`, number of `images`, images per shard (`shard_size`);
    the model's `class_names` and `category_ids`, recorded once the model is loaded (the output files need
    them, and a run with nothing left to do does not load the model)."""

    command: str
    fingerprint: str
    images: int
    shard_size: int
    class_names: tuple[str, ...] | None = None
    category_ids: tuple[int, ...] | None = None
    version: int = MANIFEST_VERSION

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """The manifest in `folder`, or None when there is none; DetforgeError when it is unreadable."""
        path = folder / MANIFEST_FILE
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            names, ids = d.get("class_names"), d.get("category_ids")
            return cls(
                command=str(d["command"]),
                fingerprint=str(d["fingerprint"]),
                images=int(d["images"]),
                shard_size=int(d["shard_size"]),
                class_names=None if names is None else tuple(str(n) for n in names),
                category_ids=None if ids is None else tuple(int(i) for i in ids),
                version=int(d["version"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DetforgeError(f"{path}: unreadable job manifest ({exc}); pass --overwrite to start afresh") from None

    def save(self, folder: Path) -> None:
        atomic_write_json(folder / MANIFEST_FILE, asdict(self))


def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare_job_folder(
    folder: str | Path, job: Manifest, *, overwrite: bool = False, inputs: Iterable[object] = ()
) -> tuple[Path, Manifest, bool]:
    """Decide, writing nothing, what `folder` is for `job`: (the folder made absolute, the manifest in force,
    whether it must be (re)started with `start_job_folder`).

    A new or empty folder: started. A folder holding the same job (same command and fingerprint): resumed
    under its own manifest (its shard size wins). The command's own output of an earlier version (marker,
    no manifest): started (cleared). Refused (OutputFolderError) unless `overwrite`, which starts it afresh:
    a folder of another job (the message names --overwrite), a folder not written by this command (see
    `detforge.outdir.check_output_folder`). Never: a folder holding an input.
    """
    target = check_output_folder(folder, job.command, overwrite=overwrite, inputs=inputs)
    mine = target.is_dir() and written_by(target) == job.command
    earlier = Manifest.load(target) if mine and not overwrite else None
    if earlier is not None and earlier.command == job.command and earlier.fingerprint == job.fingerprint:
        return target, earlier, False
    if earlier is not None:
        raise OutputFolderError(
            f"{folder}: holds the results of another `detforge {job.command}` job (other model, settings or "
            f"images; {earlier.images} images). Choose another folder, or pass --overwrite (overwrite=True) "
            "to discard them and start this job"
        )
    return target, job, True


def start_job_folder(target: Path, job: Manifest) -> None:
    """Empty `target` (created when missing), then write the marker and `job`'s manifest."""
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        _clear(target)
    atomic_write_json(target / MARKER, {"command": job.command})
    job.save(target)
