"""DetectionDataset and build_loader: typed batches, EXIF frame, masks, errors that name the file, determinism."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.loader import Batch, DetectionDataset, build_loader, collate, default_num_workers
from detforge.data.sampler import TrainingSampler
from detforge.data.transforms import build_transforms
from detforge.errors import DatasetError
from detforge.structures import RLE, Annotation, Categories, ImageRecord, Polygons

CATEGORIES = Categories.from_names(["digit", "stamp"], first_id=7)  # ids 7, 8 -> labels 0, 1


def _dataset(tmp_path: Path, image_factory: Callable[..., Path], n: int = 6) -> Dataset:
    """`n` noise images of 64x48; image 1 has no objects; image 0 also has a crowd region."""
    images, anns = [], []
    for i in range(n):
        path = image_factory(tmp_path / f"img{i}.png", 64, 48, seed=i)
        images.append(ImageRecord(100 + i, path.name, path, 64, 48))
        if i == 1:
            continue
        anns.append(Annotation(len(anns) + 1, 100 + i, 7, (4.0, 5.0, 30.0, 40.0)))
        anns.append(Annotation(len(anns) + 1, 100 + i, 8, (35.0, 10.0, 60.0, 20.0)))
    anns.append(Annotation(len(anns) + 1, 100, 8, (0.0, 0.0, 64.0, 48.0), iscrowd=True))
    return Dataset(tuple(images), tuple(anns), CATEGORIES, tmp_path, "coco")


def test_items_and_batches_have_the_promised_types(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    dataset = DetectionDataset(_dataset(tmp_path, image_factory), build_transforms("standard", train=True, max_size=32))
    image, target = dataset[0]
    assert image.dtype == torch.float32 and image.shape[0] == 3 and max(image.shape[1:]) <= 32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert target.image_id == 100 and target.masks is None
    assert target.boxes.dtype == torch.float32 and target.labels.dtype == torch.int64
    assert sorted(target.labels.tolist()) == [0, 1]  # crowd region left out; ids 7/8 mapped to 0/1
    empty_image, empty = dataset[1]
    assert tuple(empty.boxes.shape) == (0, 4) and tuple(empty.labels.shape) == (0,) and empty_image.shape[0] == 3

    loader = build_loader(dataset, batch_size=4, sampler=None, num_workers=0)
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 2] and len(loader) == 2
    assert isinstance(batches[0], Batch)
    assert [t.image_id for b in batches for t in b.targets] == [100, 101, 102, 103, 104, 105]
    moved = batches[0].to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.images[0], batches[0].images[0])


def test_dataset_is_sanitized_once_and_problems_are_kept(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "a.png", 64, 48)
    anns = (
        Annotation(1, 1, 7, (10.0, 10.0, 20.0, 20.0)),
        Annotation(2, 1, 8, (100.0, 100.0, 120.0, 120.0)),  # entirely outside the 64x48 image
        Annotation(3, 1, 8, (50.0, 40.0, 80.0, 60.0)),  # extends past the edge: clipped
    )
    record = ImageRecord(1, path.name, path, 64, 48)
    dataset = DetectionDataset(Dataset((record,), anns, CATEGORIES, tmp_path, "coco"), None)
    assert sorted(p.code for p in dataset.problems) == ["box.clipped", "box.outside_image"]
    _, target = dataset[0]
    assert target.boxes.tolist() == [[10.0, 10.0, 20.0, 20.0], [50.0, 40.0, 64.0, 48.0]]
    assert target.labels.tolist() == [0, 1]


def test_boxes_are_scaled_with_the_image(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    dataset = DetectionDataset(_dataset(tmp_path, image_factory), build_transforms("none", train=False, max_size=32))
    image, target = dataset[0]
    assert tuple(image.shape) == (3, 24, 32)
    assert target.boxes.tolist() == [[2.0, 2.5, 15.0, 20.0], [17.5, 5.0, 30.0, 10.0]]


def _exif_rotated(path: Path) -> None:
    """Displayed (after EXIF orientation 6) as 30 wide x 50 tall, white in x 5..15, y 30..45; black elsewhere."""
    displayed = np.zeros((50, 30, 3), dtype=np.uint8)
    displayed[30:45, 5:15] = 255
    raw = Image.fromarray(displayed).transpose(Image.Transpose.ROTATE_90)  # orientation 6 rotates it back
    exif = Image.Exif()
    exif[0x0112] = 6
    raw.save(path, exif=exif.tobytes())


def test_exif_rotated_image_gives_boxes_in_the_displayed_frame(tmp_path: Path) -> None:
    path = tmp_path / "rotated.png"
    _exif_rotated(path)
    assert Image.open(path).size == (50, 30)  # stored landscape
    record = ImageRecord(1, path.name, path, 30, 50)
    ann = Annotation(1, 1, 7, (5.0, 30.0, 15.0, 45.0))
    dataset = DetectionDataset(Dataset((record,), (ann,), CATEGORIES, tmp_path, "coco"), None)
    image, target = dataset[0]
    assert tuple(image.shape) == (3, 50, 30)
    ys, xs = torch.nonzero(image.mean(0) > 0.5, as_tuple=True)
    assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == (5, 30, 15, 45)
    assert target.boxes.tolist() == [[5.0, 30.0, 15.0, 45.0]]


def test_masks_are_rasterised_from_polygons_rle_and_boxes(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "m.png", 40, 30)
    square = np.zeros((30, 40), dtype=np.uint8)
    square[10:20, 20:30] = 1
    counts: list[int] = []  # uncompressed COCO RLE: column-major runs, starting with zeros
    flat, value, run = square.flatten(order="F"), 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    anns = (
        Annotation(1, 1, 7, (2.0, 2.0, 12.0, 12.0), Polygons(((2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0),))),
        Annotation(2, 1, 8, (20.0, 10.0, 30.0, 20.0), RLE(tuple(counts), (30, 40))),
        Annotation(3, 1, 7, (0.0, 25.0, 5.0, 30.0)),
    )
    record = ImageRecord(1, path.name, path, 40, 30)
    dataset = DetectionDataset(Dataset((record,), anns, CATEGORIES, tmp_path, "coco"), None, with_masks=True)
    _, target = dataset[0]
    assert target.masks is not None and target.masks.dtype == torch.uint8 and tuple(target.masks.shape) == (3, 30, 40)
    assert int(target.masks[0].sum()) in range(100, 122)  # the 10x10 polygon, edges rasterised COCO-style
    assert int(target.masks[0, 5, 5]) == 1 and int(target.masks[0, 20, 20]) == 0
    assert torch.equal(target.masks[1], torch.from_numpy(square))
    assert int(target.masks[2].sum()) == 25 and int(target.masks[2, 27, 2]) == 1

    # with a size cap, masks are rasterised at the capped size and stay on their (scaled) boxes
    capped = DetectionDataset(
        Dataset((record,), anns, CATEGORIES, tmp_path, "coco"),
        build_transforms("standard", train=True, max_size=20),
        with_masks=True,
    )
    for seed in range(4):
        torch.manual_seed(seed)
        image, target = capped[0]
        assert target.masks is not None and target.masks.shape[1:] == image.shape[1:]
        assert len(target.masks) == len(target.boxes) >= 1
        for mask, box in zip(target.masks, target.boxes, strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert len(xs) > 0
            x0, y0, x1, y1 = box.tolist()
            assert x0 - 1 <= float(xs.min()) and float(xs.max()) + 1 <= x1 + 1
            assert y0 - 1 <= float(ys.min()) and float(ys.max()) + 1 <= y1 + 1
    eval_transforms = build_transforms("none", train=False, max_size=20)
    no_aug = DetectionDataset(Dataset((record,), anns, CATEGORIES, tmp_path, "coco"), eval_transforms, with_masks=True)
    _, small = no_aug[0]
    assert small.masks is not None and tuple(small.masks.shape) == (3, 15, 20)
    assert torch.equal(small.masks[1], torch.from_numpy(square[::2, ::2].copy()))


def test_undecodable_image_raises_dataset_error_naming_it(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    base = _dataset(tmp_path, image_factory, n=4)
    (tmp_path / "img2.png").write_bytes(b"this is not a png")
    dataset = DetectionDataset(base, build_transforms("light", train=True, max_size=None))
    with pytest.raises(DatasetError, match=r"img2\.png \(dataset index 2, image id 102\) cannot be decoded"):
        dataset[2]
    loader = build_loader(dataset, batch_size=1, sampler=None, num_workers=2)
    with pytest.raises(DatasetError, match=r"img2\.png \(dataset index 2, image id 102\)"):
        list(loader)


def test_size_disagreeing_with_annotations_is_an_error(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    path = image_factory(tmp_path / "a.png", 64, 48)
    record = ImageRecord(5, path.name, path, 48, 64)  # width/height swapped, as a wrong EXIF handling would give
    dataset = DetectionDataset(Dataset((record,), (), CATEGORIES, tmp_path, "coco"), None)
    with pytest.raises(DatasetError, match=r"a\.png .*decoded size 64x48 .* differs from the 48x64"):
        dataset[0]


def _flatten(batches: list[Batch]) -> Flat:
    return [(t.image_id, im, t.boxes) for b in batches for im, t in zip(b.images, b.targets, strict=True)]


Flat = list[tuple[int, torch.Tensor, torch.Tensor]]


def _same(a: Flat, b: Flat) -> bool:
    """Same images, same augmented pixels, same boxes, in the same order."""
    if len(a) != len(b):
        return False
    return all(
        x[0] == y[0] and x[1].shape == y[1].shape and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2])
        for x, y in zip(a, b, strict=True)
    )


def test_two_workers_give_the_same_batches_as_none_and_resume_is_exact(
    tmp_path: Path, image_factory: Callable[..., Path]
) -> None:
    dataset = DetectionDataset(_dataset(tmp_path, image_factory), build_transforms("strong", train=True, max_size=48))
    rng_before = torch.get_rng_state()

    def run(num_workers: int, state: dict[str, int] | None = None) -> list[Batch]:
        sampler = TrainingSampler(len(dataset), seed=5, repeat_factors=[1.0, 1.5] * 3)
        if state is not None:
            sampler.load_state_dict(state)
        else:
            sampler.set_epoch(1)
        loader = build_loader(dataset, batch_size=2, sampler=sampler, num_workers=num_workers, seed=11)
        return list(loader)

    in_process = run(0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the loader leaves the caller's RNG alone
    workers = run(2)
    assert _same(_flatten(in_process), _flatten(workers))  # augmentation does not depend on num_workers
    resumed = run(0, {"epoch": 1, "position": 2})
    assert _same(_flatten(resumed), _flatten(in_process)[2:])  # a resumed run sees exactly the rest


def test_repeat_runs_across_epochs_with_the_batches_of_separate_passes(
    tmp_path: Path, image_factory: Callable[..., Path]
) -> None:
    # One endless iterator lets workers prepare the next epoch early (an H100 waited for the first batch of
    # every epoch); it must give exactly what one pass per epoch gives, from a mid-epoch resume point too.
    transforms = build_transforms("strong", train=True, max_size=48)
    dataset = DetectionDataset(_dataset(tmp_path, image_factory, n=5), transforms)

    def passes(state: dict[str, int], epochs: int) -> list[tuple[int, int, list[Batch]]]:
        sampler = TrainingSampler(len(dataset), seed=3, repeat_factors=[1.0, 1.7, 1.0, 1.0, 2.0])
        sampler.load_state_dict(state)
        loader = build_loader(dataset, batch_size=2, sampler=sampler, num_workers=0, seed=4)
        out = []
        for _ in range(epochs):
            for batch in loader:
                out.append((sampler.epoch, sampler.position, [batch]))
                sampler.advance(len(batch.images))
            sampler.set_epoch(sampler.epoch + 1)
        return out

    def endless(state: dict[str, int], steps: int, num_workers: int) -> list[tuple[int, int, list[Batch]]]:
        sampler = TrainingSampler(len(dataset), seed=3, repeat_factors=[1.0, 1.7, 1.0, 1.0, 2.0])
        sampler.load_state_dict(state)
        loader = build_loader(dataset, batch_size=2, sampler=sampler, num_workers=num_workers, seed=4, repeat=True)
        out = []
        for batch, _ in zip(loader, range(steps), strict=False):
            sampler.advance(len(batch.images))  # rolls over to the next epoch when this one is used up
            out.append((sampler.epoch, sampler.position - len(batch.images), [batch]))
        return out

    start = {"epoch": 2, "position": 2}
    expected = passes(start, 3)
    for workers in (0, 2):
        got = endless(start, len(expected), workers)
        assert [(e, p) for e, p, _ in got] == [(e, p) for e, p, _ in expected]
        assert _same(_flatten([b for *_, bs in got for b in bs]), _flatten([b for *_, bs in expected for b in bs]))


def test_epochs_differ_and_collate_keeps_order(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    transforms = build_transforms("strong", train=True, max_size=48)
    dataset = DetectionDataset(_dataset(tmp_path, image_factory, n=3), transforms)
    sampler = TrainingSampler(3, seed=0, shuffle=False)
    loader = build_loader(dataset, batch_size=3, sampler=sampler, num_workers=0)
    epoch0 = _flatten(list(loader))
    sampler.set_epoch(1)
    epoch1 = _flatten(list(loader))
    assert [x[0] for x in epoch0] == [x[0] for x in epoch1] == [100, 101, 102]
    assert not _same(epoch0, epoch1)
    batch = collate([dataset[0], dataset[2]])
    assert [t.image_id for t in batch.targets] == [100, 102]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locked memory needs an accelerator")
def test_pin_memory(tmp_path: Path, image_factory: Callable[..., Path]) -> None:
    dataset = DetectionDataset(_dataset(tmp_path, image_factory, n=2), None)
    batch = collate([dataset[0], dataset[1]]).pin_memory()
    assert batch.images[0].is_pinned() and batch.targets[0].boxes.is_pinned()


@pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 0), (3, 2), (4, 3), (16, 4)])
def test_default_num_workers(monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_num_workers() == expected


@pytest.mark.parametrize(("cpus", "expected"), [(2, 0), (4, 3), (16, 8), (64, 8)])
def test_a_gpu_run_gets_more_loader_workers(monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int) -> None:
    # On an H100 4 workers left the GPU waiting for data 24% of the time (benchmarks/bench_gpu.py).
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_num_workers(gpu=True) == expected
