"""Which dataset items a training run visits, epoch by epoch: shuffled, repeat-factor balanced, resumable."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from detforge.data.dataset import Dataset

__all__ = ["TrainingSampler", "repeat_factors"]


class TrainingSampler(Sampler[int]):
    """Per-epoch stream of dataset indices for one rank, resumable mid-epoch.

    Epoch `e`'s full index list is a pure function of `(seed, e)`: each item `i` appears
    ``floor(r_i)`` times plus once more with probability ``frac(r_i)`` (stochastic rounding of its repeat
    factor `r_i`, 1.0 for every item when `repeat_factors` is None), then the list is shuffled (if
    `shuffle`). With ``world_size > 1`` the list is padded by wrapping around to a multiple of
    `world_size`, and rank `r` takes positions ``r, r + world_size, ...``: equal lengths, and disjoint
    positions covering the whole list.

    Progress: `position` counts how many of this epoch's indices (on this rank) the trainer has consumed.
    The trainer — not the iterator, which a DataLoader reads ahead — moves it with `advance(n)` after
    each batch of `n` items. `__iter__` yields the epoch's indices from `position` on, so after
    `load_state_dict` a resumed run sees exactly the indices the interrupted run had not consumed.
    `__len__` is the number `__iter__` will yield (`epoch_length - position`).
    """

    def __init__(
        self,
        num_items: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        repeat_factors: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_items < 1:
            raise ValueError(f"TrainingSampler: num_items must be >= 1, got {num_items}")
        if seed < 0:
            raise ValueError(f"TrainingSampler: seed must be >= 0, got {seed}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"TrainingSampler: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        super().__init__()
        factors: np.ndarray | None = None
        if repeat_factors is not None:
            factors = np.asarray(repeat_factors, dtype=np.float64)
            if factors.shape != (num_items,):
                raise ValueError(
                    f"TrainingSampler: repeat_factors has {factors.size} values, expected one per item ({num_items})"
                )
            bad = np.flatnonzero(~np.isfinite(factors) | (factors <= 0))
            if bad.size:
                raise ValueError(
                    f"TrainingSampler: repeat_factors[{int(bad[0])}] = {factors[bad[0]]}; expected a finite number > 0"
                )
        self.num_items = num_items
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._factors = factors
        self._epoch = 0
        self._position = 0
        self._cache: tuple[int, list[int]] | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def position(self) -> int:
        """How many of this epoch's indices (this rank) have been consumed, per `advance`."""
        return self._position

    def set_epoch(self, epoch: int) -> None:
        """Move to `epoch` with `position` 0. Setting the current epoch again keeps `position` (so a
        trainer that calls ``set_epoch(e)`` at the top of its loop does not undo a resume)."""
        if epoch < 0:
            raise ValueError(f"TrainingSampler.set_epoch: epoch must be >= 0, got {epoch}")
        if epoch != self._epoch:
            self._epoch = epoch
            self._position = 0

    def advance(self, n: int) -> None:
        """Record that the trainer consumed the next `n` indices (on this rank). When the current epoch is
        used up, `n > 0` indices belong to the next epoch, which starts first (a loader built with
        ``repeat=True`` runs on across epochs; batches never straddle two)."""
        if n > 0 and self._position == self.epoch_length:
            self.set_epoch(self._epoch + 1)
        if n < 0 or self._position + n > self.epoch_length:
            raise ValueError(
                f"TrainingSampler.advance({n}): position {self._position} + {n} would leave epoch {self._epoch} "
                f"of {self.epoch_length} indices"
            )
        self._position += n

    @property
    def epoch_length(self) -> int:
        """Number of indices this rank gets in the current epoch (varies by epoch with repeat factors)."""
        return len(self.epoch_indices())

    def epoch_indices(self) -> list[int]:
        """This rank's complete index list for the current epoch (a pure function of seed, epoch, rank)."""
        return self.indices_of(self._epoch)

    def indices_of(self, epoch: int) -> list[int]:
        """This rank's complete index list for `epoch` (any epoch; the sampler's own state is unchanged)."""
        if self._cache is None or self._cache[0] != epoch:
            indices = self._compute(epoch)
            if epoch != self._epoch:
                return indices
            self._cache = (epoch, indices)
        return self._cache[1]

    def _compute(self, epoch: int) -> list[int]:
        rng = np.random.default_rng([self.seed, epoch])
        if self._factors is None:
            indices = np.arange(self.num_items, dtype=np.int64)
        else:
            whole = np.floor(self._factors)
            counts = whole + (rng.random(self.num_items) < self._factors - whole)
            indices = np.repeat(np.arange(self.num_items, dtype=np.int64), counts.astype(np.int64))
        if self.shuffle:
            indices = rng.permutation(indices)
        if self.world_size > 1 and indices.size:
            total = math.ceil(indices.size / self.world_size) * self.world_size
            indices = np.resize(indices, total)[self.rank :: self.world_size]
        return [int(i) for i in indices]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self._position :])

    def __len__(self) -> int:
        return self.epoch_length - self._position

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "position"}``: all that is needed, with the same constructor arguments, to resume."""
        return {"epoch": self._epoch, "position": self._position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore `state_dict()`'s output; the next `__iter__` starts at that position of that epoch."""
        missing = {"epoch", "position"} - set(state)
        if missing:
            raise ValueError(f"TrainingSampler.load_state_dict: missing keys {sorted(missing)} in {dict(state)}")
        epoch, position = state["epoch"], state["position"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"TrainingSampler.load_state_dict: 'epoch' must be an int >= 0, got {epoch!r}")
        self._epoch = epoch
        self._position = 0
        if not isinstance(position, int) or not 0 <= position <= self.epoch_length:
            raise ValueError(
                f"TrainingSampler.load_state_dict: 'position' must be an int in [0, {self.epoch_length}] "
                f"for epoch {epoch}, got {position!r}"
            )
        self._position = position

    def __repr__(self) -> str:
        return (
            f"TrainingSampler(num_items={self.num_items}, shuffle={self.shuffle}, seed={self.seed}, "
            f"repeat_factors={'None' if self._factors is None else 'given'}, rank={self.rank}, "
            f"world_size={self.world_size}, epoch={self._epoch}, position={self._position})"
        )


def repeat_factors(dataset: Dataset, threshold: float) -> list[float]:
    """LVIS repeat-factor sampling: one factor >= 1 per image of `dataset`, in `dataset.images` order.

    For class `c` with image frequency `f_c` (fraction of the dataset's images that contain at least one
    non-crowd object of `c`), ``r_c = max(1, sqrt(threshold / f_c))``; an image's factor is the largest
    `r_c` over the classes it contains (1.0 for an image with no objects). `threshold` is a frequency in
    (0, 1]: classes rarer than it are oversampled (LVIS uses 0.001).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"repeat_factors: threshold must be a frequency in (0, 1], got {threshold}")
    classes_of: dict[int, set[int]] = {im.id: set() for im in dataset.images}
    for ann in dataset.annotations:
        if not ann.iscrowd and ann.image_id in classes_of:
            classes_of[ann.image_id].add(ann.category_id)
    num_images = max(len(dataset.images), 1)
    images_with: dict[int, int] = {}
    for classes in classes_of.values():
        for c in classes:
            images_with[c] = images_with.get(c, 0) + 1
    class_factor = {c: max(1.0, math.sqrt(threshold / (n / num_images))) for c, n in images_with.items()}
    return [max((class_factor[c] for c in classes_of[im.id]), default=1.0) for im in dataset.images]
