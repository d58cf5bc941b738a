"""Fine-tune losses: the published BCE with label smoothing, or softmax cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_targets(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Published (CAV-MAE/EVI-MAE loader) smoothing of multi-hot targets ``(B, C)``: positives
    become ``1 − ε``, negatives ``ε / C``."""
    if smoothing <= 0:
        return target
    c = target.shape[-1]
    return torch.where(target > 0, 1.0 - smoothing, smoothing / c).to(target.dtype)


def classification_loss(
    logits: torch.Tensor, target: torch.Tensor, kind: str = "bce", smoothing: float = 0.1
) -> torch.Tensor:
    """Loss of ``logits`` (B, C) against multi-hot ``target`` (B, C), computed in float32.

    ``bce``: binary cross-entropy with logits on smoothed targets (published). ``ce``: softmax
    cross-entropy on the normalised multi-hot target with the same smoothing.
    """
    logits = logits.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, smooth_targets(target, smoothing))
    if kind == "ce":
        dist = target / target.sum(dim=-1, keepdim=True).clamp_min(1.0)
        return F.cross_entropy(logits, dist, label_smoothing=smoothing)
    raise ValueError(f"unknown loss {kind!r}")
