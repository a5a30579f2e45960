"""The local engine: the pending shards' images through one predictor on this machine, in listing order,
`batch_size` at a time within each shard; each shard is written the moment its last image is done."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from detforge.batch.result_json import result_to_dict
from detforge.batch.shards import ShardPlan, write_shard
from detforge.inference.predictor import Predictor
from detforge.inference.sources import ImageSource
from detforge.progress import counting, tick

__all__ = ["run_local"]


def run_local(
    predictor: Predictor,
    images: Sequence[ImageSource],
    plan: ShardPlan,
    pending: Sequence[int],
    out: Path,
    *,
    desc: str,
) -> int:
    """Predict the images of the `pending` shards and write each shard to `out`; a bar with images/s and
    ETA on stderr (see `detforge.progress`). A bad image becomes a failed result, never an exception.
    Returns the number of images predicted."""
    total = sum(len(plan.span(s)) for s in pending)

    def shards() -> Iterator[tuple[int, list[dict[str, Any]]]]:
        # batches never cross a shard's edges: every run predicts the same batches, whatever was done before
        for shard in pending:
            results = predictor.predict_many([images[i] for i in plan.span(shard)], on_error="report")
            records = []
            for result in results:
                records.append(result_to_dict(result))
                tick("image")
            yield shard, records

    with counting(desc, counts="image", total=total):
        for shard, records in shards():
            write_shard(out, shard, records)
    return total
