"""The exported graphs resize every image to the size the eager model does (float64, floored).

Found on phone photos (1429x1023, 1319x941, ...): the traced resize computed the size in float32 and
floored one pixel short or long on many sizes, so ONNX scores differed from PyTorch by up to 0.08.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from detforge.export import export_model
from detforge.export.exact_resize import ExactResizeTransform, exact_resize, resized_size
from detforge.export.parity import parity_image_sizes, resize_trap_sides, synthetic_image

PHOTO_SIZES = [(1429, 1023), (1023, 1429), (1122, 883), (1319, 941), (941, 1319), (1201, 997), (601, 1667), (461, 333)]


class _Resize(torch.nn.Module):
    def __init__(self, transform: GeneralizedRCNNTransform) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform.resize(image, None)[0]


def _transform(min_size: int, max_size: int) -> GeneralizedRCNNTransform:
    return GeneralizedRCNNTransform(min_size, max_size, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]).eval()


def test_traced_and_scripted_resize_give_eager_sizes_and_pixels(tmp_path: Path) -> None:
    import onnxruntime as ort

    eager = _transform(512, 853)
    model = _Resize(eager).eval()
    with exact_resize(model):
        assert isinstance(model.transform, ExactResizeTransform)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (torch.rand(3, 96, 128),), str(tmp_path / "r.onnx"), dynamo=False, input_names=["image"],
                dynamic_axes={"image": {1: "h", 2: "w"}}, opset_version=17,
            )  # fmt: skip
            scripted = torch.jit.script(model)
    assert type(model.transform) is GeneralizedRCNNTransform  # swapped back
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    for height, width in PHOTO_SIZES:
        image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(height))
        expected = eager.resize(image)[0]
        assert tuple(expected.shape[1:]) == resized_size(height, width, 512, 853)
        traced = session.run(None, {"image": image.numpy()})[0]
        assert traced.shape == expected.shape, (height, width)  # 1319x941: 511 rows eagerly, 512 traced before
        assert np.abs(traced - expected.numpy()).max() < 1e-3  # ONNX Runtime samples at float32-rounded points
        assert torch.equal(scripted(image), expected), (height, width)  # 1429x1023: 511 columns scripted before


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_is_exact_on_photo_sizes_that_floored_wrong(tiny_artifact: Path, tmp_path: Path, fmt: str) -> None:
    traps = resize_trap_sides(64, start=80, count=3)  # the tiny model's resize floors these wrong in float32
    assert traps == [82, 83, 94]
    images = [synthetic_image(traps[0], 113, seed=1), synthetic_image(121, traps[1], seed=2)]
    images.append(synthetic_image(round(traps[2] * 1.397), traps[2], seed=3))
    report = export_model(tiny_artifact, format=fmt, out=tmp_path, parity_images=images)  # type: ignore[arg-type]
    assert report.parity.count_mismatch == 0 and report.parity.detections > 10
    assert report.parity.max_score_diff < 1e-3 and report.parity.max_box_diff_px < 0.05


@pytest.mark.parametrize(("min_size", "max_size"), [(64, 96), (320, 320), (512, 853), (800, 1333)])
def test_default_parity_images_are_odd_portrait_and_landscape_resize_traps(min_size: int, max_size: int) -> None:
    sizes = parity_image_sizes(min_size, max_size)
    (h0, w0), (h1, w1), (h2, w2), (h3, w3) = sizes
    assert h0 > w0 and h1 < w1 and h3 > w3  # portrait, landscape, small portrait
    traps = resize_trap_sides(min_size, start=0, count=1000)
    assert w0 in traps and h1 in traps  # their shorter sides floor differently in float32
    assert max_size / w2 < min_size / h2  # max_size limits the wide one
    assert max(h3, w3) < min_size  # scaled up
    assert all(side % 2 == 1 for side in (h2, w2, h3, w3))  # odd sizes
