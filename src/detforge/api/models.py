"""`detforge.list_models()`: the model zoo as rows (what `detforge models` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detforge.models.info import ModelRow

__all__ = ["list_models"]


def list_models(*, measure_gflops: bool = False) -> list[ModelRow]:
    """One row per zoo model: name, family, parameters, GFLOPs at the default size, pretrained weights."""
    from detforge.models.zoo import model_table

    return model_table(measure_gflops=measure_gflops)
