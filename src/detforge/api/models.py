"""`detforge.list_models()`: the model zoo as rows (what `detforge models` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detforge.models.info import ModelRow

__all__ = ["list_models"]


def list_models(*, measure_gflops: bool = False) -> list[ModelRow]:
    """One row per zoo model: name, family, parameters, GFLOPs at the default size, pretrained weights.

    Read from the zoo's stored table (no torch import); `measure_gflops` counts GFLOPs now instead (slow)."""
    if not measure_gflops:
        from detforge.models.info import MODEL_ROWS

        return list(MODEL_ROWS.values())
    from detforge.models.zoo import model_table

    return model_table(measure_gflops=True)
