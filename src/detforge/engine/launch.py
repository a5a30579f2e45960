"""Start N training processes on this machine (`devices=N`) and collect rank 0's result.

The launcher runs the training function it is given (`train_job.train_from_config`), so that it does not
import the module that calls it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp

from detforge.config import Config
from detforge.engine.result import TrainingDiverged
from detforge.errors import CheckpointError, ConfigError, DatasetError, DetforgeError
from detforge.fileio import atomic_write_json

__all__ = ["ERROR_FILE", "free_port", "spawn_workers"]

ERROR_FILE = ".worker_error.json"
TrainFunction = Callable[..., Any]
"""`train_from_config`'s signature: (config, *, out_dir, resume, devices, progress) -> TrainResult."""
_ERRORS: dict[str, type[DetforgeError]] = {
    cls.__name__: cls for cls in (CheckpointError, ConfigError, DatasetError, TrainingDiverged)
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    local_rank: int,
    train: TrainFunction,
    world_size: int,
    port: int,
    config: Config,
    out_dir: str,
    resume: bool,
    progress: bool,
) -> None:
    os.environ.update(
        {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    try:
        train(config, out_dir=Path(out_dir), resume=resume, devices=world_size, progress=progress)
    except DetforgeError as exc:  # re-raised by the parent with the same message
        if local_rank == 0:
            atomic_write_json(Path(out_dir) / ERROR_FILE, {"type": type(exc).__name__, "message": str(exc)})
        raise


def spawn_workers(
    train: TrainFunction, config: Config, out_dir: Path, *, devices: int, resume: bool, progress: bool
) -> dict[str, Any]:
    """Run `train(config, out_dir=..., resume=..., devices=..., progress=...)` in `devices` new processes
    (ranks 0..devices-1) and wait for them. `train` must be a module-level function (it is pickled by name).

    Returns the content of rank 0's `result.json`. A DetforgeError raised in rank 0 is raised here with
    the same type and message; any other failure raises RuntimeError with the worker's traceback.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ERROR_FILE).unlink(missing_ok=True)
    port = free_port()
    try:
        mp.spawn(
            _worker, args=(train, devices, port, config, str(out_dir), resume, progress), nprocs=devices, join=True
        )
    except mp.ProcessRaisedException as exc:
        err = out_dir / ERROR_FILE
        if err.exists():
            info = json.loads(err.read_text(encoding="utf-8"))
            err.unlink(missing_ok=True)
            raise _ERRORS.get(info["type"], DetforgeError)(info["message"]) from None
        raise RuntimeError(f"a training process failed:\n{exc}") from None
    data: dict[str, Any] = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
    return data
