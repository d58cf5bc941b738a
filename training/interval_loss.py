"""The ``interval`` objective's loss (TIM): per-class sigmoid cross-entropy of every query
(positives: the smoothed one-hot of their segment's class, weighted by their tIoU with it;
background: the smoothing floor on every class) plus the distance-IoU loss of the refined
boundaries of the positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evimae_stream.intervals import diou_loss, target_offsets


def interval_loss(model: nn.Module, batch: dict[str, torch.Tensor], positive_target: float
                  ) -> torch.Tensor:  # fmt: skip
    """The mean loss of one batch of crops (:class:`training.interval_data.CropSampler`)."""
    logits, offsets = model(batch["feats"], batch["present"], batch["times"], batch["queries"])
    labels, weights = batch["labels"], batch["weights"]  # (B, Q)
    k = logits.shape[-1]
    floor = (1.0 - positive_target) / (k + 1)
    target = torch.full_like(logits, floor)  # (B, Q, K)
    pos = (labels >= 0) & (weights > 0)
    target[pos] = F.one_hot(labels[pos], k).to(logits.dtype) * positive_target + floor
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)  # (B, Q)
    cls = (bce * weights).sum() / (weights > 0).sum().clamp(min=1)
    if not bool(pos.any()):
        return cls + 0.0 * offsets.sum()
    want = target_offsets(batch["queries"][pos], batch["targets"][pos])  # (P, 2)
    reg = diou_loss(offsets[pos], want).mean()
    return cls + reg
