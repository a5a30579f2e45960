"""Distributed data parallel on CPU (gloo): two processes started by `devices=2`, rank 0 writes alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.config import Config
from detforge.engine import train_from_config
from detforge.engine.checkpoint import load_checkpoint
from detforge.engine.logs import read_metrics

pytestmark = pytest.mark.timeout(300)


def test_two_processes_train_and_only_rank_0_writes(make_config: Callable[..., Config], tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = make_config("train.max_iter=2", "train.warmup_iters=1", "eval.period=2", "train.batch_size=4")
    result = train_from_config(config, out_dir=out, devices=2, progress=False)
    assert result.iterations == 2 and result.stop_reason == "max_iter"
    assert result.model_path.exists() and result.best_checkpoint is not None
    events = read_metrics(out)
    assert [e["event"] for e in events] == ["start", "train", "train", "eval", "stop"]  # one writer
    assert events[0]["world_size"] == 2
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    # each rank owns 3 of the 6 training images per epoch: a batch of 2, then the epoch's last (smaller) one
    assert last["sampler"] == {"epoch": 0, "position": 3}
    names = sorted(p.name for p in out.iterdir())
    assert names == ["checkpoints", "config.yaml", "metrics.jsonl", "model.pt", "result.json", "tb"]
    assert len(list((out / "tb").iterdir())) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def test_started_by_torchrun(make_config: Callable[..., Config], tmp_path: Path) -> None:
    import subprocess
    import sys

    from detforge.config import dump_config

    (tmp_path / "config.yaml").write_text(dump_config(make_config("train.max_iter=1", "train.warmup_iters=0")))
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nfrom detforge.config import load_config\n"
        "from detforge.engine import train_from_config\n"
        "result = train_from_config(load_config(sys.argv[1]), out_dir=Path(sys.argv[2]), progress=False)\n"
        "print('rank result', result.iterations)\n"
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path / "config.yaml"),
        str(tmp_path / "run"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("rank result 1") == 2
    events = read_metrics(tmp_path / "run")
    assert [e["event"] for e in events] == ["start", "train", "eval", "stop"] and events[0]["world_size"] == 2
    assert (tmp_path / "run" / "model.pt").exists()
