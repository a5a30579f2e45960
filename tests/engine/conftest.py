"""Fixtures for trainer tests: a tiny COCO dataset written in tmp_path and a tiny, fast config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from detforge.config import Config, load_config
from tiny_fixtures import build_tiny_detector, write_tiny_coco


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on this shared 2-core machine, two spinning threads per process under load
    made tiny training runs 3-5x slower (measured: 6-9 s vs 27 s for the same 6-iteration run)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_OVERRIDES = (
    "model.name=fasterrcnn_mobilenet_v3_large_320_fpn",
    "model.weights=none",
    "model.min_size=64",
    "model.max_size=64",
    "train.device=cpu",
    "train.batch_size=2",
    "train.max_iter=6",
    "train.warmup_iters=2",
    "train.lr=0.01",
    "train.log_period=1",
    "eval.period=3",
    "data.num_workers=0",
    "data.augment=light",
    "data.test=null",
)


def tiny_config(data: Path, *overrides: str) -> Config:
    """The tiny config for the dataset at `data`, with extra overrides applied last."""
    return load_config(None, [*TINY_OVERRIDES, f"data.path={data}", *overrides])


@pytest.fixture(scope="session")
def tiny_setup() -> tuple[Callable[..., Path], Callable[..., Config]]:
    """(write_tiny_coco, tiny_config) for module-scoped fixtures."""
    return write_tiny_coco, tiny_config


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_coco(tmp_path / "data")


@pytest.fixture
def make_config(tiny_data: Path) -> Callable[..., Config]:
    """`make_config("train.max_iter=4", ...)`: the tiny config with extra overrides applied last."""

    def make(*overrides: str) -> Config:
        return tiny_config(tiny_data, *overrides)

    return make


@pytest.fixture
def tiny_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train with `build_tiny_detector` instead of a zoo model (for tests of the trainer's own logic)."""
    monkeypatch.setattr("detforge.models.build.build_detector", build_tiny_detector)
