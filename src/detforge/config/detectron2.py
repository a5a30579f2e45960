"""Detectron2 config keys and where their meaning lives in detforge (used in error hints and docs)."""

from __future__ import annotations

__all__ = ["DETECTRON2_KEYS", "detectron2_hint"]

DETECTRON2_KEYS: dict[str, str] = {
    "SOLVER.BASE_LR": "train.lr",
    "SOLVER.MAX_ITER": "train.max_iter",
    "SOLVER.STEPS": "train.steps",
    "SOLVER.GAMMA": "train.gamma",
    "SOLVER.IMS_PER_BATCH": "train.batch_size",
    "SOLVER.MOMENTUM": "train.momentum",
    "SOLVER.WEIGHT_DECAY": "train.weight_decay",
    "SOLVER.WARMUP_ITERS": "train.warmup_iters",
    "SOLVER.WARMUP_FACTOR": "train.warmup_factor",
    "SOLVER.LR_SCHEDULER_NAME": "train.scheduler",
    "SOLVER.CHECKPOINT_PERIOD": "train.checkpoint_period",
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": "train.clip_grad_norm",
    "SOLVER.AMP.ENABLED": "train.amp",
    "SEED": "train.seed",
    "MODEL.DEVICE": "train.device",
    "TEST.EVAL_PERIOD": "eval.period",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": "eval.score_threshold",
    "INPUT.MIN_SIZE_TRAIN": "model.min_size",
    "INPUT.MIN_SIZE_TEST": "model.min_size",
    "INPUT.MAX_SIZE_TRAIN": "model.max_size",
    "INPUT.MAX_SIZE_TEST": "model.max_size",
    "INPUT.RANDOM_FLIP": "data.flip",
    "MODEL.WEIGHTS": "model.weights",
    "MODEL.BACKBONE.FREEZE_AT": "model.trainable_backbone_layers",
    "DATASETS.TRAIN": "data.train",
    "DATASETS.TEST": "data.val",
    "DATALOADER.NUM_WORKERS": "data.num_workers",
    "DATALOADER.REPEAT_THRESHOLD": "data.repeat_factor_threshold",
    "MODEL.ROI_HEADS.NUM_CLASSES": "",
    "MODEL.RETINANET.NUM_CLASSES": "",
}
"""Detectron2 key -> the detforge key that plays its role (semantics may differ; see the docs); "" = automatic."""


def detectron2_hint(key: str) -> str | None:
    """A hint when `key` (any case, dotted) is a Detectron2 key, else None."""
    target = DETECTRON2_KEYS.get(key.upper())
    if target is None:
        return None
    if not target:
        return f"{key.upper()} is a Detectron2 key; detforge sets it from the dataset's categories, so leave it out"
    return f"{key.upper()} is a Detectron2 key; in detforge use {target!r} (see docs/detectron2-migration.md)"
