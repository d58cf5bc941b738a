"""The ``interval`` objective's loss (TIM): per-class sigmoid cross-entropy of every query
(positives: the smoothed one-hot of their segment's class, weighted by their tIoU with it;
background: the smoothing floor on every class) plus the distance-IoU loss of the refined
boundaries of the positives, plus the same sigmoid cross-entropy of every window for the window
head (its class at its centre; background windows the floor)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evimae_stream.intervals import diou_loss, target_offsets


def smoothed_targets(labels: torch.Tensor, k: int, positive_target: float) -> torch.Tensor:
    """``(..., K)`` targets of class ids ``labels (...)`` (< 0: background): TIM's smoothing."""
    floor = (1.0 - positive_target) / (k + 1)
    target = torch.full((*labels.shape, k), floor, device=labels.device)
    pos = labels >= 0
    target[pos] = F.one_hot(labels[pos], k).float() * positive_target + floor
    return target


def interval_loss(model: nn.Module, batch: dict[str, torch.Tensor], positive_target: float
                  ) -> torch.Tensor:  # fmt: skip
    """The mean loss of one batch of crops (:class:`training.interval_data.CropSampler`)."""
    logits, offsets, windows = model(
        batch["feats"], batch["present"], batch["times"], batch["queries"]
    )
    labels, weights = batch["labels"], batch["weights"]  # (B, Q)
    k = logits.shape[-1]
    target = smoothed_targets(torch.where(weights > 0, labels, -1), k, positive_target)
    bce = F.binary_cross_entropy_with_logits(logits, target.to(logits), reduction="none").sum(-1)
    cls = (bce * weights).sum() / (weights > 0).sum().clamp(min=1)
    wl = batch["window_labels"]  # (B, N): −2 padding
    real = (wl > -2) & batch["present"].any(-1)
    wt = smoothed_targets(wl, k, positive_target).to(windows)
    wbce = F.binary_cross_entropy_with_logits(windows, wt, reduction="none").sum(-1)  # (B, N)
    win = (wbce * real).sum() / real.sum().clamp(min=1)
    pos = (labels >= 0) & (weights > 0)
    if not bool(pos.any()):
        return cls + win + 0.0 * offsets.sum()
    want = target_offsets(batch["queries"][pos], batch["targets"][pos])  # (P, 2)
    reg = diou_loss(offsets[pos], want).mean()
    return cls + win + reg
