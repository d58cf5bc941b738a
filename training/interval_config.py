"""The ``interval`` section of a training recipe: the interval model (TIM) trained on the
window features of a recogniser artifact (``base_model``).

``context_s``: seconds of features one context holds (the random crops and the live run's
look-back); ``stride_s``: seconds between feature windows. Queries: the dense pyramid from
``query_min_size`` (a fraction of the context) at inference and half that for the training pool,
``train_queries`` of which are drawn per crop; a query is a positive of the ground-truth segment
it overlaps by ``iou_threshold`` or more (TIM: 0.25), its class target ``positive_target`` (TIM's
0.9 label smoothing). ``crops_per_epoch``: random contexts per epoch; ``modality_drop``: chance
that a crop loses its IMU or its video tokens (half each), so either may be missing at run time.
``min_score``/``open_score``: the score floors of a detection and of a live segment;
``refine``: snap detections' boundaries to the window head's evidence
(:func:`evimae_stream.intervals.refine`).
``ignore``: labels that are not actions (breaks), never a class. ``feature_dir``: the feature
cache (default ``<run_dir>/features``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.typed_config import config_error


@dataclass
class IntervalSection:
    base_model: str = ""
    context_s: float = 30.0
    stride_s: float = 0.5
    dim: int = 64
    heads: int = 4
    layers: int = 2
    query_min_size: float = 0.0625
    train_queries: int = 64
    iou_threshold: float = 0.25
    positive_target: float = 0.9
    crops_per_epoch: int = 256
    modality_drop: float = 0.2
    nms_iou: float = 0.5
    min_score: float = 0.05
    open_score: float = 0.3
    refine: bool = True
    ignore: list[str] = field(default_factory=lambda: ["null"])
    feature_dir: str | None = None

    def validate(self) -> None:
        if not (self.context_s > 0 and self.stride_s > 0 and self.context_s >= 4 * self.stride_s):
            raise config_error("interval.context_s", "needs context_s >= 4 * stride_s > 0")
        if not 0 < self.query_min_size < 1:
            raise config_error("interval.query_min_size", "must be in (0, 1)")
        for name in ("dim", "heads", "layers", "train_queries", "crops_per_epoch"):
            if getattr(self, name) < 1:
                raise config_error(f"interval.{name}", "must be >= 1")
        if (2 * self.dim) % self.heads:
            raise config_error("interval.heads", f"must divide 2*dim ({2 * self.dim})")
        for name in ("iou_threshold", "positive_target", "nms_iou"):
            if not 0 < getattr(self, name) <= 1:
                raise config_error(f"interval.{name}", "must be in (0, 1]")
        for name in ("modality_drop", "min_score", "open_score"):
            if not 0 <= getattr(self, name) < 1:
                raise config_error(f"interval.{name}", "must be in [0, 1)")
