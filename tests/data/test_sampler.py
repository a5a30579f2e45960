"""TrainingSampler: deterministic epochs, exact resume, repeat-factor balancing, distributed slices."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from torch.utils.data import Sampler

from detforge.data.dataset import Dataset
from detforge.data.sampler import TrainingSampler, repeat_factors
from detforge.structures import Annotation, Categories, ImageRecord


def test_epochs_are_deterministic_permutations() -> None:
    a = TrainingSampler(50, seed=3)
    b = TrainingSampler(50, seed=3)
    assert isinstance(a, Sampler)
    first = list(a)
    assert sorted(first) == list(range(50)) and len(a) == 50
    assert first == list(b)
    assert first != list(range(50))  # shuffled
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    assert list(TrainingSampler(50, seed=4)) != first
    assert list(TrainingSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_resume_from_state_dict_yields_the_identical_remaining_sequence() -> None:
    factors = [1.0, 2.5, 1.0, 1.3] * 10
    run = TrainingSampler(40, seed=9, repeat_factors=factors)
    run.set_epoch(2)
    full = list(run)
    run.advance(8)
    run.advance(4)
    state = run.state_dict()
    assert state == {"epoch": 2, "position": 12}

    resumed = TrainingSampler(40, seed=9, repeat_factors=factors)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a trainer re-entering the same epoch must not lose the position
    assert list(resumed) == full[12:]
    assert len(resumed) == len(full) - 12 and resumed.epoch_length == len(full)
    resumed.set_epoch(3)
    assert resumed.position == 0 and len(list(resumed)) == resumed.epoch_length


def test_progress_and_state_are_validated() -> None:
    sampler = TrainingSampler(10)
    with pytest.raises(ValueError, match=r"advance\(11\)"):
        sampler.advance(11)
    with pytest.raises(ValueError, match="'position' must be an int in \\[0, 10\\]"):
        sampler.load_state_dict({"epoch": 0, "position": 11})
    with pytest.raises(ValueError, match="missing keys \\['position'\\]"):
        sampler.load_state_dict({"epoch": 0})
    with pytest.raises(ValueError, match="one per item"):
        TrainingSampler(3, repeat_factors=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"repeat_factors\[1\] = -1.0"):
        TrainingSampler(3, repeat_factors=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="rank"):
        TrainingSampler(3, rank=2, world_size=2)


def _dataset(num_images: int, rare_images: int) -> Dataset:
    images = tuple(ImageRecord(i, f"{i}.jpg", Path(f"{i}.jpg"), 100, 100) for i in range(num_images))
    anns = [Annotation(i, i, 1, (0.0, 0.0, 10.0, 10.0)) for i in range(num_images)]
    anns += [Annotation(1000 + i, i, 2, (0.0, 0.0, 5.0, 5.0)) for i in range(rare_images)]
    anns.append(Annotation(5000, num_images - 1, 3, (0.0, 0.0, 5.0, 5.0), iscrowd=True))  # crowd: ignored
    return Dataset(images, tuple(anns), Categories.from_names(["common", "rare", "crowd"]), Path("."), "coco")


def test_repeat_factors_follow_lvis_formula() -> None:
    factors = repeat_factors(_dataset(100, 2), threshold=0.1)
    rare = math.sqrt(0.1 / 0.02)
    assert factors[:2] == pytest.approx([rare, rare])
    assert factors[2:] == [1.0] * 98  # common class: frequency 1.0 > threshold; crowd class ignored
    with pytest.raises(ValueError, match="threshold"):
        repeat_factors(_dataset(3, 1), threshold=0.0)


def test_repeat_factors_oversample_a_rare_class() -> None:
    dataset = _dataset(100, 2)
    sampler = TrainingSampler(100, seed=0, repeat_factors=repeat_factors(dataset, threshold=0.1))
    counts: Counter[int] = Counter()
    epochs = 200
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        per_epoch = Counter(sampler)
        assert per_epoch[0] in (2, 3) and per_epoch[50] == 1  # stochastic rounding of 2.236 / exactly 1
        counts.update(per_epoch)
    assert counts[0] / epochs == pytest.approx(math.sqrt(5), abs=0.1)
    assert counts[1] / epochs == pytest.approx(math.sqrt(5), abs=0.1)
    assert counts[50] == epochs


@pytest.mark.parametrize(("num_items", "world_size"), [(12, 3), (10, 3), (2, 4)])
def test_distributed_slices_are_equal_disjoint_and_covering(num_items: int, world_size: int) -> None:
    ranks = [TrainingSampler(num_items, seed=1, rank=r, world_size=world_size) for r in range(world_size)]
    for s in ranks:
        s.set_epoch(4)
    slices = [list(s) for s in ranks]
    per_rank = math.ceil(num_items / world_size)
    assert all(len(sl) == per_rank for sl in slices)
    everything = [i for sl in slices for i in sl]
    assert set(everything) == set(range(num_items))  # covering
    if num_items % world_size == 0:
        assert len(everything) == len(set(everything))  # disjoint
    single = TrainingSampler(num_items, seed=1)
    single.set_epoch(4)
    full = list(single)
    # rank r holds positions r, r + world_size, ... of one global order, padded by wrapping around
    interleaved = [slices[r][k] for k in range(per_rank) for r in range(world_size)]
    assert interleaved == [full[i % num_items] for i in range(per_rank * world_size)]
