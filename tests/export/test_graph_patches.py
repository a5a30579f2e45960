"""The export-time RoI pooler: same numbers as torchvision's, and no ScatterElements in the ONNX graph."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn
from torchvision.ops import MultiScaleRoIAlign

from detforge.export import ExportReport
from detforge.export.graph_patches import EmptySafeBoxCoder, GatherMergedRoIAlign, export_patches


def test_same_pooled_features_as_torchvision_for_boxes_on_every_level() -> None:
    gen = torch.Generator().manual_seed(0)
    features = OrderedDict(
        (name, torch.rand(1, 8, 256 // 2**k, 320 // 2**k, generator=gen)) for k, name in enumerate(["0", "1", "2", "3"])
    )
    sizes = torch.tensor([4.0, 30.0, 90.0, 200.0, 16.0, 120.0, 60.0, 250.0])  # small boxes pool from fine levels
    corners = torch.rand(8, 2, generator=gen) * 40
    boxes = [torch.cat([corners, corners + sizes[:, None]], dim=1)]
    reference = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    expected = reference(features, boxes, [(1024, 1280)])
    levels = reference.map_levels(boxes)  # type: ignore[misc]
    assert len(set(levels.tolist())) >= 3  # the case exercises the merge across levels
    stand_in = GatherMergedRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    assert torch.equal(stand_in(features, boxes, [(1024, 1280)]), expected)


def test_the_swap_is_undone_and_leaves_other_models_alone() -> None:
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=2)
    original = model.roi_heads.box_roi_pool
    with export_patches(model):
        swapped = model.roi_heads.box_roi_pool
        assert isinstance(swapped, GatherMergedRoIAlign) and swapped.featmap_names == original.featmap_names
    assert model.roi_heads.box_roi_pool is original
    plain = torch.nn.Linear(2, 2)
    with export_patches(plain):
        pass


def test_exported_graph_merges_levels_without_scatter(tiny_onnx: ExportReport) -> None:
    # ONNX Runtime ran torchvision's traced ScatterElements merge on one thread: 45% of MobileNetV3-FPN's time.
    ops = {node.op_type for node in onnx.load(str(tiny_onnx.path)).graph.node}
    assert "RoiAlign" in ops and "ScatterElements" not in ops


def test_box_decoding_traced_with_boxes_runs_with_none(tmp_path: Path) -> None:
    # A trained model saw no object in `detforge benchmark`'s synthetic image: every proposal was filtered
    # out and ONNX Runtime failed on the Reshape to (0, -1) that torchvision's BoxCoder.decode traces to.
    import onnxruntime as ort
    from torchvision.models.detection._utils import BoxCoder

    class Decode(torch.nn.Module):
        def __init__(self, coder: BoxCoder) -> None:
            super().__init__()
            self.coder = coder

        def forward(self, codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
            return self.coder.decode(codes, [boxes])

    def run(coder: BoxCoder, count: int) -> list[np.ndarray]:
        path = tmp_path / f"{type(coder).__name__}.onnx"
        codes, boxes = torch.rand(5, 8), torch.rand(5, 4) * 10 + torch.tensor([0.0, 0.0, 20.0, 20.0])
        axes = {"codes": {0: "n"}, "boxes": {0: "n"}}
        torch.onnx.export(
            Decode(coder), (codes, boxes), str(path), dynamo=False, input_names=["codes", "boxes"], dynamic_axes=axes
        )
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"codes": np.zeros((count, 8), np.float32), "boxes": np.tile(np.float32([0, 0, 20, 20]), (count, 1))}
        return list(session.run(None, feed))

    original = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    codes, boxes = torch.randn(6, 12), torch.rand(6, 4) * 50 + torch.tensor([0.0, 0.0, 60.0, 60.0])
    same = EmptySafeBoxCoder((10.0, 10.0, 5.0, 5.0)).decode(codes, [boxes])
    assert same.shape == (6, 3, 4) and torch.allclose(same, original.decode(codes, [boxes]), atol=1e-5)
    assert run(EmptySafeBoxCoder((10.0, 10.0, 5.0, 5.0)), 3)[0].shape == (3, 2, 4)
    assert run(EmptySafeBoxCoder((10.0, 10.0, 5.0, 5.0)), 0)[0].shape == (0, 2, 4)
    with pytest.raises(Exception, match="cannot be reshaped"):  # what the exported models did before
        run(original, 0)


def test_export_patches_swap_the_box_decoder_too() -> None:
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=2)
    coder = model.roi_heads.box_coder
    with export_patches(model):
        assert isinstance(model.roi_heads.box_coder, EmptySafeBoxCoder)
        assert model.roi_heads.box_coder.weights == coder.weights
    assert model.roi_heads.box_coder is coder
