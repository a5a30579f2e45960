"""Predictor: every source kind, folder runs past bad files, batching, thresholds, tiling/TTA, real artifacts."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.errors import ConfigError, InvalidImage
from detforge.inference import predictor as predictor_module
from detforge.inference.predictor import PredictionResult, Predictor
from detforge.inference.tiling import TileConfig

OBJECTS = [(5, 5, 25, 25, 230, 1), (40, 10, 60, 30, 100, 2)]  # scores 0.90 and 0.39
BOXES = [[5.0, 5.0, 25.0, 25.0], [40.0, 10.0, 60.0, 30.0]]


def _png(arr: np.ndarray, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def test_every_single_image_kind_gives_the_same_detections(tmp_path: Path, fake, painter) -> None:  # type: ignore[no-untyped-def]
    arr = painter(64, 40, OBJECTS)
    path = tmp_path / "img.png"
    path.write_bytes(_png(arr))
    predictor = Predictor(fake, device="cpu", score_threshold=0.0)
    for image in (path, str(path), path.read_bytes(), Image.fromarray(arr), arr, arr[..., ::-1].copy()):
        channels: Literal["RGB", "BGR"] = "BGR" if image is not arr and isinstance(image, np.ndarray) else "RGB"
        dets = predictor(image, channels=channels)
        assert dets.image_size == (40, 64)
        assert dets.boxes.tolist() == BOXES
        assert dets.labels.tolist() == [1, 2]
        assert dets.scores.tolist() == pytest.approx([230 / 255, 100 / 255])
    gray = predictor(np.zeros((10, 12), dtype=np.uint8))
    assert (len(gray), gray.image_size) == (0, (10, 12))
    with pytest.raises(InvalidImage, match="not a readable image"):
        predictor(b"garbage bytes")
    with pytest.raises(ValueError, match="predict_many"):
        predictor(tmp_path)  # a folder is many images


def test_detections_are_in_the_exif_oriented_frame(tmp_path: Path, fake, painter) -> None:  # type: ignore[no-untyped-def]
    raw = painter(60, 40, [(5, 10, 15, 20, 200, 0)])
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: 40 wide, 60 high
    (tmp_path / "rotated.png").write_bytes(_png(raw, exif=exif.tobytes()))
    dets = Predictor(fake, device="cpu")(tmp_path / "rotated.png")
    assert dets.image_size == (60, 40)
    assert dets.boxes.tolist() == [[20.0, 5.0, 30.0, 15.0]]


def test_folder_run_reports_bad_files_and_goes_on(tmp_path: Path, fake, painter) -> None:  # type: ignore[no-untyped-def]
    good = _png(painter(64, 40, OBJECTS))
    files = {"a.png": good, "b.png": b"not an image at all", "c/d.png": good, "e.png": good[:60], "f.png": good}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    predictor = Predictor(fake, device="cpu", batch_size=2)
    results = list(predictor.predict_many(tmp_path))
    assert [r.source for r in results] == ["a.png", "b.png", "c/d.png", "e.png", "f.png"]
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert fake.batches == [2, 1]  # three readable images, two per forward pass
    bad = results[1]
    assert bad.detections is None and bad.image_size is None and bad.path == tmp_path / "b.png"
    assert bad.error is not None and "b.png" in bad.error and "not a readable image" in bad.error
    assert results[3].error is not None and "e.png" in results[3].error
    assert results[2].image_size == (40, 64) and results[2].path == tmp_path / "c" / "d.png"
    assert results[0].detections is not None and results[0].detections.boxes.tolist() == [BOXES[0]]  # 0.39 < 0.5
    skipped = list(Predictor(fake, device="cpu").predict_many(tmp_path, on_error="skip"))
    assert [r.source for r in skipped] == ["a.png", "c/d.png", "f.png"]
    with pytest.raises(InvalidImage, match=r"b\.png"):
        list(Predictor(fake, device="cpu").predict_many(tmp_path, on_error="raise"))
    with pytest.raises(ConfigError, match="on_error"):
        list(predictor.predict_many(tmp_path, on_error="ignore"))  # type: ignore[arg-type]


def test_model_failure_on_one_image_spares_its_batch(fake_class, painter) -> None:  # type: ignore[no-untyped-def]
    detector = fake_class(poison_width=13)
    images = [painter(64, 40, OBJECTS), painter(13, 13, []), painter(20, 20, [(2, 2, 12, 12, 255, 0)])]
    results = list(Predictor(detector, device="cpu", batch_size=3).predict_many(images))
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == "<array 2>: prediction failed (RuntimeError: poisoned image)"
    assert results[1].image_size == (13, 13)
    assert detector.batches == [3, 1, 1, 1]  # the batch fails, then each image alone
    with pytest.raises(RuntimeError, match="poisoned"):
        list(Predictor(detector, device="cpu").predict_many(images, on_error="raise"))


def test_lists_and_globs_keep_source_order(tmp_path: Path, fake, painter) -> None:  # type: ignore[no-untyped-def]
    for name in ("x1.png", "x2.png", "y.png"):
        (tmp_path / name).write_bytes(_png(painter(30, 30, [(1, 1, 11, 11, 255, 0)])))
    predictor = Predictor(fake, device="cpu", batch_size=4)
    names = [r.source for r in predictor.predict_many(str(tmp_path / "x*.png"))]
    assert names == [(tmp_path / "x1.png").as_posix(), (tmp_path / "x2.png").as_posix()]
    mixed = list(predictor.predict_many([tmp_path / "y.png", painter(8, 8, []), tmp_path / "missing.png"]))
    assert [(r.source, r.ok) for r in mixed] == [
        (str(tmp_path / "y.png"), True),
        ("<array 1>", True),
        (str(tmp_path / "missing.png"), False),
    ]


def _fake_artifact(monkeypatch: pytest.MonkeyPatch, detector: object, threshold: float) -> list[tuple[Path, str]]:
    calls: list[tuple[Path, str]] = []
    spec = SimpleNamespace(
        class_names=("cat", "dog", "bird"),
        category_ids=(3, 7, 9),
        score_threshold=threshold,
        score_threshold_calibrated=True,
    )

    def load(path: Path, device: str) -> tuple[object, object]:
        calls.append((path, device))
        return detector, spec

    monkeypatch.setattr(predictor_module, "_load_model", load)
    return calls


def test_threshold_calibrated_explicit_and_zero(monkeypatch: pytest.MonkeyPatch, fake, painter) -> None:  # type: ignore[no-untyped-def]
    objects = [(0, 0, 10, 10, 250, 0), (20, 0, 30, 10, 160, 1), (40, 0, 50, 10, 60, 2), (60, 0, 70, 10, 3, 0)]
    image = painter(80, 20, objects)  # scores 0.98, 0.63, 0.24, 0.01
    calls = _fake_artifact(monkeypatch, fake, threshold=0.6)
    calibrated = Predictor.from_checkpoint("model.pt", device="cpu")
    assert calls == [(Path("model.pt"), "cpu")]
    assert (calibrated.score_threshold, calibrated.threshold_source) == (0.6, "calibrated")
    assert calibrated.class_names == ("cat", "dog", "bird") and calibrated.category_ids == (3, 7, 9)
    assert len(calibrated(image)) == 2
    explicit = Predictor("model.pt", device="cpu", score_threshold=0.2, class_names=["a", "b", "c"])
    assert (explicit.threshold_source, explicit.class_names, len(explicit(image))) == ("explicit", ("a", "b", "c"), 3)
    everything = Predictor("model.pt", device="cpu", score_threshold=0)
    assert (everything.score_threshold, len(everything(image))) == (0.0, 4)
    bare = Predictor(fake, device="cpu")
    assert (bare.score_threshold, bare.threshold_source, bare.category_ids) == (0.5, "default", None)
    assert bare.class_names == ("class_0", "class_1", "class_2")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"class_names": ["one"]}, "class_names: got 1 names"),
        ({"class_names": "abc"}, "class_names"),
        ({"batch_size": 0}, "batch_size"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"device": "tpu:9"}, "device"),
        ({"tile": 640}, "tile"),
    ],
)
def test_bad_arguments_are_config_errors(fake, kwargs: dict[str, object], pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=pattern):
        Predictor(fake, **kwargs)  # type: ignore[arg-type]


def test_cuda_request_without_cuda_is_refused(fake) -> None:  # type: ignore[no-untyped-def]
    if torch.cuda.is_available():
        assert Predictor(fake, device="cuda").device.type == "cuda"
    else:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Predictor(fake, device="cuda")
        assert Predictor(fake, device="auto", half=True).half is False  # fp16 only on CUDA


def test_tiling_and_flip_tta_through_the_predictor(fake_class, painter) -> None:  # type: ignore[no-untyped-def]
    image = painter(200, 120, [(85, 40, 95, 50, 200, 1), (120, 30, 180, 90, 150, 2)])
    plain = Predictor(fake_class(), device="cpu")
    assert plain(image).boxes.tolist() == [[120.0, 30.0, 180.0, 90.0]]
    tiled = Predictor(fake_class(), device="cpu", tile=TileConfig(size=100))
    assert tiled(image).boxes.tolist() == [[85.0, 40.0, 95.0, 50.0], [120.0, 30.0, 180.0, 90.0]]
    small = painter(60, 40, [(40, 5, 55, 20, 220, 0)])  # right half: invisible to the blind detector
    assert len(Predictor(fake_class(left_half_only=True), device="cpu")(small)) == 0
    both = Predictor(fake_class(left_half_only=True), device="cpu", flip_tta=True, tile=TileConfig(size=100))
    results = list(both.predict_many([image, small]))
    assert results[1].detections is not None and results[1].detections.boxes.tolist() == [[40.0, 5.0, 55.0, 20.0]]
    assert results[0].detections is not None and len(results[0].detections) == 2


def test_prediction_result_is_validated() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        PredictionResult("x", None, None, None)


def test_real_detector_artifact_round_trip(tmp_path: Path) -> None:
    from detforge.models.artifact import ModelSpec, save_model
    from detforge.models.build import build_detector

    torch.manual_seed(0)
    detector, _ = build_detector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=2, weights="none", min_size=64, max_size=96
    )
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    spec = ModelSpec(name, 2, ("ant", "bee"), (11, 12), 64, 96, score_threshold=0.3, score_threshold_calibrated=True)
    path = save_model(tmp_path / "model.pt", detector, spec)
    predictor = Predictor.from_checkpoint(path, device="cpu", score_threshold=0.0, batch_size=2)
    assert predictor.class_names == ("ant", "bee") and predictor.category_ids == (11, 12)
    assert predictor.model.detection_params.score_thresh == 0.0  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), rng.integers(0, 255, (70, 50, 3), dtype=np.uint8)]
    results = list(predictor.predict_many(images))
    assert [r.image_size for r in results] == [(48, 80), (70, 50)]
    for r in results:
        assert r.detections is not None and r.image_size is not None
        assert len(r.detections) > 0  # random weights, threshold 0: some boxes
        d = r.detections
        assert bool((d.scores[:-1] >= d.scores[1:]).all()) and int(d.labels.max()) <= 1
        assert bool((d.boxes[:, 2] <= r.image_size[1]).all()) and bool((d.boxes[:, 3] <= r.image_size[0]).all())
    calibrated = Predictor.from_checkpoint(path, device="cpu")
    assert (calibrated.score_threshold, calibrated.threshold_source) == (0.3, "calibrated")
    assert calibrated.model.detection_params.score_thresh == pytest.approx(0.05)  # type: ignore[attr-defined]
    save_model(path, detector, dataclasses.replace(spec, score_threshold_calibrated=False))
    assert Predictor.from_checkpoint(path, device="cpu").threshold_source == "default"  # 0.3, but not calibrated


def test_a_detector_passed_in_keeps_its_own_threshold() -> None:
    from detforge.models import DetectionParams
    from detforge.models.build import build_detector

    torch.manual_seed(0)
    detector, _ = build_detector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=2, weights="none", min_size=64, max_size=96
    )
    strict = DetectionParams(score_thresh=0.6, nms_thresh=0.5, detections_per_img=100)
    detector.detection_params = strict
    predictor = Predictor(detector, device="cpu", score_threshold=0.0)
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 64, 80), dtype=np.uint8))
    (dets,) = predictor.predict_tensors([image])
    assert len(dets) > 0 and float(dets.scores.min()) < 0.6  # the predictor's own threshold applies
    assert detector.detection_params == strict  # the caller's model is not changed
    (own,) = detector.predict([image.float() / 255])
    assert bool((own.scores >= 0.6).all())


def test_predict_tensors_takes_uint8_chw(fake, painter) -> None:  # type: ignore[no-untyped-def]
    image = torch.from_numpy(painter(64, 40, OBJECTS)).permute(2, 0, 1).contiguous()
    (dets,) = Predictor(fake, device="cpu", score_threshold=0.0).predict_tensors([image])
    assert dets.boxes.tolist() == BOXES
    with pytest.raises(ValueError, match=r"uint8 \[3, H, W\]"):
        Predictor(fake, device="cpu").predict_tensors([image.float() / 255])


def test_models_get_channels_first_contiguous_floats_from_hwc_views(fake, painter) -> None:  # type: ignore[no-untyped-def]
    """A decoded image is a [3, H, W] view of an H x W x 3 array; the float copy handed to the model is laid out
    channels first (an exported graph's runtime would otherwise copy it again, eager resizes run channels-last)."""
    seen: list[torch.Tensor] = []
    predict = fake.predict
    fake.predict = lambda images: (seen.extend(images), predict(images))[1]
    view = torch.from_numpy(painter(64, 40, OBJECTS)).permute(2, 0, 1)
    assert not view.is_contiguous()
    (dets,) = Predictor(fake, device="cpu", score_threshold=0.0).predict_tensors([view])
    assert dets.boxes.tolist() == BOXES
    assert len(seen) == 1 and seen[0].is_contiguous() and seen[0].dtype == torch.float32
    assert torch.equal(seen[0], view.float() / 255)
