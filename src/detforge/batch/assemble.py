"""The results of a finished job, read back from its shards in listing order."""

from __future__ import annotations

from pathlib import Path

from detforge.batch.result_json import result_from_dict
from detforge.batch.shards import ShardPlan, read_shard, shard_path
from detforge.errors import DetforgeError
from detforge.inference.predictor import PredictionResult

__all__ = ["assemble_results"]


def assemble_results(out: Path, plan: ShardPlan) -> list[PredictionResult]:
    """One PredictionResult per image of the job, in listing order, from the shard files in `out`.
    DetforgeError naming the shard file when one is missing, unreadable or of the wrong length."""
    results: list[PredictionResult] = []
    for shard in range(plan.count):
        if not shard_path(out, shard).is_file():
            raise DetforgeError(f"{shard_path(out, shard)}: missing; run the job again to redo it")
        for number, record in enumerate(read_shard(out, shard, len(plan.span(shard))), start=1):
            try:
                results.append(result_from_dict(record))
            except (KeyError, ValueError, TypeError) as exc:
                raise DetforgeError(f"{shard_path(out, shard)}:{number}: malformed result ({exc})") from None
    return results
