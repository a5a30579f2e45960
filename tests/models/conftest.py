"""Fixtures for model tests: no network, tiny batches, and cheaper RoI sampling for big models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from detforge.models.detector import Detector
from detforge.structures.detections import Target

TINY = {"min_size": 64, "max_size": 96}


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to download official weights fails as if offline."""

    def refuse(url: str, dst: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"network disabled in tests: {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def hub_dir(tmp_path: Path) -> Iterator[Path]:
    """A private torch hub folder (torch.hub.get_dir()) so tests never touch the user's cache."""
    folder = tmp_path / "hub"
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(folder))
    yield folder
    torch.hub.set_dir(old)


def _shrink(detector: Detector) -> Detector:
    """Fewer proposals / sampled RoIs / candidates so ResNet-50 models run a step in well under a second."""
    m = detector.model
    if hasattr(m, "rpn"):
        m.rpn._pre_nms_top_n = {"training": 64, "testing": 64}
        m.rpn._post_nms_top_n = {"training": 32, "testing": 32}
        m.roi_heads.fg_bg_sampler.batch_size_per_image = 32
    if hasattr(m, "topk_candidates"):
        m.topk_candidates = 50
    return detector


@pytest.fixture
def shrink() -> Callable[[Detector], Detector]:
    return _shrink


def make_batch(seed: int = 0) -> tuple[list[torch.Tensor], list[Target]]:
    """Two images of different sizes: the first with two boxes (+ masks), the second with none."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand((3, 80, 100), generator=g), torch.rand((3, 70, 60), generator=g)]
    masks = torch.zeros((2, 80, 100), dtype=torch.uint8)
    masks[0, 10:40, 10:50] = 1
    masks[1, 45:75, 55:95] = 1
    first = Target(torch.tensor([[10.0, 10.0, 50.0, 40.0], [55.0, 45.0, 95.0, 75.0]]), torch.tensor([2, 0]), 1, masks)
    empty = Target(torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.int64), 2)
    return images, [first, empty]


@pytest.fixture
def batch() -> tuple[list[torch.Tensor], list[Target]]:
    return make_batch()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread (restored after each module): on the shared, loaded 2-core machine two OpenMP
    threads made these tiny-model steps 5-15x slower than one."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
