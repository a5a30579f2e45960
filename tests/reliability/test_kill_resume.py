"""SIGKILL a `detforge train` process at chosen points; `--resume` continues from the newest valid checkpoint
and ends (on CPU) with exactly the losses and weights of an uninterrupted run, leaving no temp files.

Every run is a real `python -m detforge train ... --out RUN --no-progress` child process. Kill points that
must be hit exactly run the child through a small wrapper script (written to tmp_path) that patches
detforge inside the child: it either kills itself part-way through writing a checkpoint's temp file or
between the two renames of `save_last`, or parks at a chosen point (after/before a save, inside a step)
and writes a marker file, after which the test sends SIGKILL from outside. By default the wrapper also
swaps the zoo model for a tiny Faster R-CNN (kilobyte checkpoints, fast steps); one slow case runs the
real zoo model through the plain CLI and kills it from outside on a timer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from tiny_fixtures import write_tiny_coco

TESTS_DIR = Path(__file__).resolve().parents[1]  # for the wrapper's `import tiny_fixtures`
TINY_OVERRIDES = (  # the tiny config of tests/engine/conftest.py, last.pt every 2 iterations
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn", "model.weights=none", "model.min_size=64", "model.max_size=64",
    "train.device=cpu", "train.batch_size=2", "train.max_iter=6", "train.warmup_iters=2", "train.lr=0.01",
    "train.log_period=1", "eval.period=3", "data.num_workers=0", "data.augment=light", "data.test=null",
    "train.checkpoint_period=2",  # last.pt at 2, 4, 6; best.pt at the evaluations (3, 6) when they improve
)  # fmt: skip
CHILD_TIMEOUT_S = 180
TINY: dict[str, Any] = {"tiny": True}  # the fault wrapper with the tiny model and no fault

WRAPPER = r'''
"""Run `detforge` (argv as for the CLI) with the fault plan in $DETFORGE_FAULT_PLAN applied first."""
import json, os, runpy, signal, sys, time
from pathlib import Path

plan = json.loads(os.environ.get("DETFORGE_FAULT_PLAN", "{}"))


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)

def park() -> None:
    """Tell the test where we are, then wait to be killed."""
    Path(plan["marker"]).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


if plan.get("tiny", True):
    import detforge.models.build
    from tiny_fixtures import build_tiny_detector  # tests/ is on PYTHONPATH (Runner.start)

    detforge.models.build.build_detector = build_tiny_detector

mode, nth = plan.get("mode"), plan.get("nth", 1)

if mode == "mid_write":  # the nth temp file written for plan["target"] gets part of its bytes, then SIGKILL
    import io
    from detforge.engine import checkpoint

    opened = []

    class Torn(io.FileIO):
        def write(self, data):
            view = memoryview(data)
            super().write(view[: len(view) // 2])
            os.fsync(self.fileno())
            die()

    def patched_open(path, how="r", *args, **kwargs):
        name = Path(path).name
        if "w" in how and plan["target"] in name and name.endswith(".tmp"):
            opened.append(name)
            if len(opened) == nth:
                return Torn(path, "w")
        return open(path, how, *args, **kwargs)

    checkpoint.open = patched_open

elif mode == "between_renames":  # the nth time last.pt becomes last.prev.pt; .last.pt.new is not renamed yet
    from detforge.engine import checkpoint

    real_replace, renames = os.replace, []

    def patched_replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).name == "last.prev.pt":
            renames.append(dst)
            if len(renames) == nth:
                die()

    checkpoint.os.replace = patched_replace

elif mode in ("park_after_save", "park_before_save"):  # around save_last of iteration plan["at"]
    from detforge.engine import callbacks

    real_save = callbacks.save_last

    def patched_save(state, folder):
        if mode == "park_before_save" and state["iteration"] == plan["at"]:
            park()
        path = real_save(state, folder)
        if state["iteration"] == plan["at"]:
            park()
        return path

    callbacks.save_last = patched_save

elif mode == "park_in_step":  # after the optimizer step of iteration plan["at"], before anything records it
    from detforge.engine.loop import Trainer

    real_step = Trainer.step

    def patched_step(self):
        losses = real_step(self)
        if self.state.iteration + 1 == plan["at"]:
            park()
        return losses

    Trainer.step = patched_step

sys.argv = ["detforge", *sys.argv[1:]]
runpy.run_module("detforge", run_name="__main__", alter_sys=True)
'''


@dataclass(frozen=True)
class Child:
    """How a child `detforge train` ended: its exit status (-9 = SIGKILL) and what it logged."""

    returncode: int
    stderr: str


class Runner:
    """Starts `detforge train` children for one dataset, plain or through the fault wrapper."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.data = data
        self.wrapper = root / "fault_wrapper.py"
        self.wrapper.write_text(WRAPPER, encoding="utf-8")

    def start(self, args: list[str], plan: dict[str, Any] | None, log: Path) -> subprocess.Popen[bytes]:
        """`plan=None`: the plain `python -m detforge`; else the fault wrapper (tiny model unless plan says not)."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        env["DETFORGE_FAULT_PLAN"] = json.dumps(plan or {})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
        head = [sys.executable, "-m", "detforge"] if plan is None else [sys.executable, str(self.wrapper)]
        with open(log, "wb") as stderr:  # a file, not a pipe: a child that is never read from cannot block
            return subprocess.Popen(
                [*head, "train", *args, "--no-progress", "--no-calibrate"],
                cwd=self.root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def _args(self, run: Path, resume: bool, extra: tuple[str, ...]) -> list[str]:
        if resume:
            return ["--out", str(run), "--resume"]
        return [str(self.data), *TINY_OVERRIDES, *extra, "--out", str(run)]

    def train(
        self, run: Path, *, plan: dict[str, Any] | None = TINY, resume: bool = False, extra: tuple[str, ...] = ()
    ) -> Child:
        """Run to the end (or until the plan's fault kills the child itself)."""
        log = run.with_name(f"{run.name}.{time.monotonic_ns()}.log")
        proc = self.start(self._args(run, resume, extra), plan, log)
        try:
            proc.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return Child(proc.returncode, log.read_text(encoding="utf-8", errors="replace"))

    def kill_when(
        self, run: Path, ready: Callable[[], bool], *, plan: dict[str, Any] | None = TINY, extra: tuple[str, ...] = ()
    ) -> Child:
        """Start a fresh run and SIGKILL it from outside as soon as `ready()` is true (polled every 20 ms)."""
        log = run.with_name(f"{run.name}.{time.monotonic_ns()}.log")
        started = time.monotonic()
        proc = self.start(self._args(run, False, extra), plan, log)
        try:
            while not ready():
                if proc.poll() is not None:
                    pytest.fail(f"the child ended (status {proc.returncode}) before the kill point:\n{log.read_text()}")
                if time.monotonic() - started > CHILD_TIMEOUT_S:
                    pytest.fail("the kill point was not reached in time")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        return Child(proc.returncode, log.read_text(encoding="utf-8", errors="replace"))


def events(run: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in (json.loads(line) for line in lines) if e["event"] == kind]


def losses(run: Path) -> dict[int, dict[str, float]]:
    """Training loss terms by iteration (metrics.jsonl holds each iteration once after a resume)."""
    train = events(run, "train")
    assert len({e["iteration"] for e in train}) == len(train), "an iteration was logged twice"
    return {e["iteration"]: {k: v for k, v in e.items() if k.startswith("loss")} for e in train}


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's dict, or for the model artifact (safetensors) {"state_dict": its tensors}."""
    if path.name == "model.pt":
        from detforge.models.artifact_io import read_artifact

        return {"state_dict": dict(read_artifact(path).state_dict)}
    obj: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return obj


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, f"{what}: {len(unequal)} tensors differ, e.g. {unequal[:3]}"


def assert_same_file(run: Path, reference: Path, name: str, key: str) -> None:
    """The tensors under `key` of the torch file `name` are equal in both run folders."""
    assert_same_tensors(load(run / name)[key], load(reference / name)[key], name)


def checkpoint_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def assert_exact_resume(run: Path, reference: Path, resumed: Child, *, start: int) -> None:
    """The resume started at iteration `start`, finished, and equals the uninterrupted `reference` run."""
    assert resumed.returncode == 0, resumed.stderr
    assert f"at iteration {start}" in resumed.stderr and "resuming" in resumed.stderr, resumed.stderr
    assert "resuming with a changed config" not in resumed.stderr
    starts = events(run, "start")
    assert [(e["iteration"], e["resumed"]) for e in starts] == [(0, False), (start, True)]
    assert losses(run) == losses(reference)  # every iteration, the redone ones included, bit for bit
    evals = {e["iteration"]: e["val_loss"] for e in events(run, "eval")}
    assert evals == {e["iteration"]: e["val_loss"] for e in events(reference, "eval")}
    assert events(run, "stop")[-1]["reason"] == "max_iter"
    assert load(run / "checkpoints" / "last.pt")["iteration"] == max(losses(reference))
    assert_same_file(run, reference, "checkpoints/last.pt", "model")  # the final weights
    assert_same_file(run, reference, "checkpoints/best.pt", "model")
    assert_same_file(run, reference, "model.pt", "state_dict")
    # nothing but the checkpoints next to them: no partial temp file, no half-renamed save
    assert checkpoint_files(run) == ["best.pt", "last.prev.pt", "last.pt"]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    root = tmp_path_factory.mktemp("kill")
    return Runner(root, write_tiny_coco(root / "data"))


@pytest.fixture(scope="module")
def reference(runner: Runner) -> Path:
    """One uninterrupted tiny run (6 iterations), the yardstick of every resume."""
    run = runner.root / "reference"
    child = runner.train(run)
    assert child.returncode == 0, child.stderr
    assert sorted(losses(run)) == [1, 2, 3, 4, 5, 6]
    return run


@pytest.fixture
def run_dir(runner: Runner, request: pytest.FixtureRequest) -> Iterator[Path]:
    run = runner.root / request.node.name.replace("[", "_").replace("]", "")
    yield run
    import shutil

    shutil.rmtree(run, ignore_errors=True)


@pytest.mark.timeout(120)
def test_kill_during_a_checkpoint_write_then_exact_resume(runner: Runner, reference: Path, run_dir: Path) -> None:
    """SIGKILL half-way through writing the temp file of the second last.pt (iteration 4): the resume
    starts from iteration 2, skips the torn file, removes it, and ends equal to the uninterrupted run."""
    killed = runner.train(run_dir, plan={**TINY, "mode": "mid_write", "target": "last.pt", "nth": 2})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    torn = [n for n in checkpoint_files(run_dir) if n.endswith(".tmp")]
    assert len(torn) == 1 and ".last.pt.new." in torn[0], checkpoint_files(run_dir)  # the fault happened
    assert load(run_dir / "checkpoints" / "last.pt")["iteration"] == 2
    resumed = runner.train(run_dir, resume=True)
    assert_exact_resume(run_dir, reference, resumed, start=2)


# kill point -> (fault plan, iteration the resume must start from). Saves: last.pt at 2, 4, 6; best.pt at
# the evaluations of 3 and 6 (the first evaluation is always "best"; 6 may or may not be).
SWEEP: dict[str, tuple[dict[str, Any], int]] = {
    "after_first_checkpoint": ({"mode": "park_after_save", "at": 2}, 2),
    "after_second_checkpoint": ({"mode": "park_after_save", "at": 4}, 4),
    "mid_write_of_first_checkpoint": ({"mode": "mid_write", "target": "last.pt", "nth": 1}, 0),
    "mid_write_of_final_checkpoint": ({"mode": "mid_write", "target": "last.pt", "nth": 3}, 4),
    "mid_write_of_best": ({"mode": "mid_write", "target": "best.pt", "nth": 1}, 2),
    "between_the_renames_of_a_save": ({"mode": "between_renames", "nth": 1}, 4),  # last.pt(2) -> prev, new(4) waits
    "inside_a_step_between_saves": ({"mode": "park_in_step", "at": 5}, 4),
    "just_before_the_final_save": ({"mode": "park_before_save", "at": 6}, 4),
}


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("point", list(SWEEP))
def test_kill_point_sweep(point: str, runner: Runner, reference: Path, run_dir: Path) -> None:
    plan, start = SWEEP[point]
    if plan["mode"].startswith("park"):
        marker = run_dir.with_name(run_dir.name + ".parked")
        marker.unlink(missing_ok=True)
        killed = runner.kill_when(run_dir, marker.exists, plan={**TINY, **plan, "marker": str(marker)})
    else:
        killed = runner.train(run_dir, plan={**TINY, **plan})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if start == 0:  # killed before any checkpoint was complete: nothing to resume, a clear error, then a fresh run
        failed = runner.train(run_dir, resume=True)
        assert failed.returncode == 1 and "error: no valid checkpoint to resume from" in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
        fresh = runner.train(run_dir)
        assert fresh.returncode == 0, fresh.stderr
        assert losses(run_dir) == losses(reference)
        assert_same_file(run_dir, reference, "model.pt", "state_dict")
        assert checkpoint_files(run_dir) == ["best.pt", "last.prev.pt", "last.pt"]
        return
    resumed = runner.train(run_dir, resume=True)
    assert_exact_resume(run_dir, reference, resumed, start=start)


def _newest_complete_checkpoint(folder: Path) -> int:
    """The highest iteration among the training checkpoints in `folder` that load completely."""
    found = [0]
    for path in folder.glob("*.pt*"):
        if path.name.startswith("best") or path.name.endswith(".tmp"):
            continue
        try:
            found.append(int(load(path)["iteration"]))
        except Exception:  # torn or half-written: not a candidate
            continue
    return max(found)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_plain_cli_with_the_zoo_model_killed_on_a_timer(runner: Runner, tmp_path: Path) -> None:
    """The real MobileNetV3-320 model (150 MB checkpoints), no wrapper: SIGKILL as soon as iteration 3 is
    logged (during the evaluation or the save that follows, or iteration 4), then `--resume`."""
    extra = ("eval.period=3", "train.checkpoint_period=1")
    reference, run = tmp_path / "reference", tmp_path / "run"
    straight = runner.train(reference, plan=None, extra=extra)
    assert straight.returncode == 0, straight.stderr

    def iteration_3_logged() -> bool:
        metrics = run / "metrics.jsonl"
        return metrics.exists() and '"event": "train", "iteration": 3' in metrics.read_text(encoding="utf-8")

    killed = runner.kill_when(run, iteration_3_logged, plan=None, extra=extra)
    assert killed.returncode == -signal.SIGKILL
    start = _newest_complete_checkpoint(run / "checkpoints")
    assert start >= 2
    resumed = runner.train(run, plan=None, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at iteration {start}" in resumed.stderr
    assert losses(run) == losses(reference)
    assert_same_file(run, reference, "checkpoints/last.pt", "model")  # the final weights
    assert not [n for n in checkpoint_files(run) if n.startswith(".")]
