"""Window-level evaluation of a fine-tune model: accuracy, macro-F1, mAP, confusion matrix.

The numbers come from :mod:`evimae_stream.metrics` (the same functions the runtime's ``--eval``
uses); this module only runs the model over a loader and arranges the result as JSON.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from evimae_stream.metrics import accuracy, average_precision, macro_f1
from training.losses import classification_loss


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision name (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def forward(model: nn.Module, batch: dict[str, torch.Tensor], mode: str) -> torch.Tensor:
    """Logits of a batch in ``mode`` (only the inputs the mode reads are passed)."""
    imu = batch.get("imu") if mode != "video_only" else None
    video = batch.get("video") if mode != "imu_only" else None
    return model(imu, video, mode)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def metrics_from_scores(
    scores: np.ndarray, targets: np.ndarray, labels: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Metrics of (N, C) scores against multi-hot targets and first labels ``labels`` (N,)."""
    pred = scores.argmax(axis=1) if len(scores) else np.empty(0, dtype=np.int64)
    names_true = [classes[i] for i in labels]
    names_pred = [classes[i] for i in pred]
    aps = {}
    for k, c in enumerate(classes):
        if targets[:, k].any():
            aps[c] = average_precision(scores[:, k], targets[:, k] > 0)
    return {
        "windows": len(labels),
        "accuracy": accuracy(names_true, names_pred),
        "macro_f1": macro_f1(names_true, names_pred),
        "mAP": float(np.mean(list(aps.values()))) if aps else float("nan"),
        "per_class_count": {c: int((labels == k).sum()) for k, c in enumerate(classes)},
        "per_class_accuracy": {
            c: float((pred[labels == k] == k).mean())
            for k, c in enumerate(classes)
            if (labels == k).any()
        },
        "confusion": confusion(labels, pred, len(classes)).tolist(),
        "classes": list(classes),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    classes: list[str],
    mode: str,
    device: torch.device,
    precision: str = "fp32",
    loss_kind: str = "bce",
    smoothing: float = 0.1,
) -> dict[str, Any]:
    """Run ``model`` (eval mode) over ``loader`` in ``mode``; metrics plus the mean loss."""
    was_training = model.training
    model.eval()
    scores, targets, labels, losses = [], [], [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            logits = forward(model, batch, mode)
        losses.append(
            float(classification_loss(logits, batch["target"], loss_kind, smoothing)) * len(logits)
        )
        scores.append(logits.float().cpu())
        targets.append(batch["target"].cpu())
        labels.append(batch["label"].cpu())
    model.train(was_training)
    if not scores:
        return {"windows": 0}
    s = torch.cat(scores).numpy()
    t = torch.cat(targets).numpy()
    y = torch.cat(labels).numpy()
    out = metrics_from_scores(s, t, y, classes)
    out["loss"] = float(sum(losses) / len(y))
    out["mode"] = mode
    return out
