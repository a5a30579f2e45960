"""The Detector adapter: label offset, losses, validation loss side effects, predictions vs torchvision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from detforge.models import DetectionParams, build_detector
from detforge.models.detector import Detector
from detforge.structures.detections import Target

TINY = {"min_size": 64, "max_size": 96}
Batch = tuple[list[torch.Tensor], list[Target]]


def _cheap(name: str = "fasterrcnn_mobilenet_v3_large_320_fpn", num_classes: int = 3) -> Detector:
    torch.manual_seed(0)
    detector, _ = build_detector(name, num_classes=num_classes, weights="none", **TINY)
    return detector


def test_predict_is_torchvision_output_with_labels_shifted(batch: Batch) -> None:
    detector = _cheap()
    detector.detection_params = DetectionParams(score_thresh=0.0, nms_thresh=0.5, detections_per_img=50)
    images, _ = batch
    ours = detector.predict(images)
    detector.model.eval()
    with torch.no_grad():
        raw = detector.model(images)
    assert len(ours) == len(raw) == 2
    for d, r in zip(ours, raw, strict=True):
        assert len(d) == len(r["boxes"]) > 0
        assert torch.equal(d.boxes, r["boxes"])
        assert torch.equal(d.scores, r["scores"])
        assert torch.equal(d.labels, r["labels"] - 1)
        assert int(d.labels.min()) >= 0 and int(d.labels.max()) <= 2
        assert torch.all(d.scores[:-1] >= d.scores[1:])


def test_training_targets_get_background_offset(batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    detector = _cheap()
    seen: list[Any] = []

    def spy(images: list[torch.Tensor], targets: Any = None) -> dict[str, torch.Tensor]:
        seen.append(targets)
        return {"loss": torch.zeros(())}

    monkeypatch.setattr(detector.model, "forward", spy)
    images, targets = batch
    detector.train()
    detector.forward_loss(images, targets)
    converted = seen[0]
    assert converted[0]["labels"].tolist() == [3, 1]  # detforge 2, 0 -> torchvision 3, 1
    assert torch.equal(converted[0]["boxes"], targets[0].boxes)
    assert converted[1]["labels"].shape == (0,) and converted[1]["boxes"].shape == (0, 4)
    assert "masks" not in converted[0]


def test_mask_model_gets_uint8_masks_and_predicts_bool_masks(
    batch: Batch, shrink: Callable[[Detector], Detector]
) -> None:
    detector = shrink(_cheap("maskrcnn_resnet50_fpn"))
    images, targets = batch
    detector.train()
    losses = detector.forward_loss(images, targets)
    assert "loss_mask" in losses and torch.isfinite(losses["loss_mask"])
    detector.detection_params = DetectionParams(score_thresh=0.0)
    detections = detector.predict(images)
    masks = detections[0].masks
    assert masks is not None and masks.dtype == torch.bool and masks.shape == (len(detections[0]), 80, 100)
    no_masks = Target(targets[0].boxes, targets[0].labels, 1)
    with pytest.raises(ValueError, match="trains on masks"):
        detector.forward_loss(images, [no_masks, targets[1]])


def test_validation_loss_leaves_statistics_modes_and_rng_alone(batch: Batch) -> None:
    detector = _cheap()
    images, targets = batch
    detector.train()
    detector.model.roi_heads.eval()  # a mixed mode must come back as it was
    norms = [m for m in detector.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    stats = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    modes = {name: m.training for name, m in detector.named_modules()}
    rng = torch.get_rng_state()
    first = detector.validation_loss(images, targets)
    second = detector.validation_loss(images, targets)
    assert set(first) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(not v.requires_grad and torch.isfinite(v) for v in first.values())
    assert {k: float(v) for k, v in first.items()} == {k: float(v) for k, v in second.items()}  # fixed seed
    for m, (mean, var, count) in zip(norms, stats, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == count
    assert {name: m.training for name, m in detector.named_modules()} == modes
    assert torch.equal(torch.get_rng_state(), rng)
    # whereas a training step does update the statistics
    detector.forward_loss(images, targets)
    assert not torch.equal(norms[0].running_mean, stats[0][0])


def test_forward_loss_needs_train_mode_and_valid_targets(batch: Batch) -> None:
    detector = _cheap()
    images, targets = batch
    detector.eval()
    with pytest.raises(RuntimeError, match="train mode"):
        detector.forward_loss(images, targets)
    detector.train()
    bad_label = Target(torch.tensor([[1.0, 1.0, 5.0, 5.0]]), torch.tensor([3]), 7)
    with pytest.raises(ValueError, match=r"image 7: labels must be in 0\.\.2"):
        detector.forward_loss(images[:1], [bad_label])
    flat = Target(torch.tensor([[5.0, 1.0, 5.0, 9.0]]), torch.tensor([0]), 8)
    with pytest.raises(ValueError, match="image 8: boxes need x2 > x1"):
        detector.forward_loss(images[:1], [flat])
    with pytest.raises(ValueError, match="one target per image"):
        detector.forward_loss(images, targets[:1])
    with pytest.raises(ValueError, match=r"images\[0\]: expected a float \[3, H, W\]"):
        detector.predict([torch.zeros((1, 8, 8))])


def test_detection_params_and_sizes() -> None:
    detector = _cheap("retinanet_resnet50_fpn")
    assert detector.detection_params == DetectionParams(0.05, 0.5, 300)
    detector.detection_params = DetectionParams(score_thresh=0.3, nms_thresh=0.4, detections_per_img=7)
    assert (detector.model.score_thresh, detector.model.nms_thresh, detector.model.detections_per_img) == (0.3, 0.4, 7)
    assert (detector.min_size, detector.max_size, detector.num_classes) == (64, 96, 3)
    assert detector.name == "retinanet_resnet50_fpn"
    two_stage = _cheap()
    two_stage.detection_params = DetectionParams(score_thresh=0.2)
    assert two_stage.model.roi_heads.score_thresh == 0.2
    assert two_stage.predict([]) == []
    with pytest.raises(ValueError, match="score_thresh"):
        DetectionParams(score_thresh=1.5)


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn"])
def test_with_detection_params_leaves_the_original_alone(name: str, batch: Batch) -> None:
    detector = _cheap(name)
    detector.eval()
    strict = DetectionParams(score_thresh=0.5, nms_thresh=0.5, detections_per_img=5)
    detector.detection_params = strict
    loose = detector.with_detection_params(DetectionParams(score_thresh=0.0, nms_thresh=0.5, detections_per_img=40))
    assert detector.detection_params == strict
    assert loose.detection_params.score_thresh == 0.0 and loose.detection_params.detections_per_img == 40
    mine = dict(detector.named_parameters())
    assert all(p is mine[n] for n, p in loose.named_parameters())  # shared, not copied
    assert not loose.training
    ours, theirs = detector.predict(batch[0]), loose.predict(batch[0])
    assert [len(d) for d in ours] == [min(5, int((d.scores >= 0.5).sum())) for d in theirs]
    assert max(len(d) for d in theirs) > 5  # the view really predicts with its own, looser params
    assert detector.detection_params == strict  # predicting through the view changed nothing either


def test_detections_per_img_caps_predictions(batch: Batch) -> None:
    detector = _cheap()
    detector.detection_params = DetectionParams(score_thresh=0.0, detections_per_img=3)
    assert [len(d) for d in detector.predict(batch[0])] == [3, 3]


def test_background_slot_detections_are_dropped(batch: Batch, shrink: Callable[[Detector], Detector]) -> None:
    detector = shrink(_cheap("fcos_resnet50_fpn"))  # sigmoid head: an untrained model scores class 0 too
    detector.detection_params = DetectionParams(score_thresh=0.0, detections_per_img=200)
    ours = detector.predict(batch[0])[0]
    detector.model.eval()
    with torch.no_grad():
        raw = detector.model(batch[0])[0]
    foreground = raw["labels"] > 0
    assert 0 < int(foreground.sum()) < len(raw["labels"])
    assert torch.equal(ours.boxes, raw["boxes"][foreground]) and torch.equal(ours.labels, raw["labels"][foreground] - 1)
