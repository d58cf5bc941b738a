"""The end-of-epoch validation score a run selects its best epoch by.

Fine-tuning: the validation split's ``train.select_metric`` (loss, accuracy, macro-F1 or mAP)
in the recipe's mode. Pretraining: the mean pretraining loss over the validation split with
fixed masks, or the training loss when there is no validation split.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from training.config import TrainConfig
from training.evaluate import autocast, evaluate


@torch.no_grad()
def pretrain_val_loss(
    model: nn.Module, loader: DataLoader, device: torch.device, precision: str, seed: int
) -> float:
    """Mean pretraining loss over ``loader`` with fixed masks (a seeded generator), so epochs
    compare; the global RNG is not touched."""
    was = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, n = 0.0, 0
    for batch in loader:
        imu, video = batch["imu"].to(device), batch.get("video")
        video = video.to(device) if video is not None else None
        with autocast(device, precision):
            out = model(imu, video, generator=gen, motion=batch.get("motion"))
        total += float(out["loss"]) * len(imu)
        n += len(imu)
    model.train(was)
    return total / max(1, n)


def select_metric(cfg: TrainConfig) -> str:
    if cfg.objective == "align" and cfg.align.select == "zeroshot":
        return "accuracy"
    if cfg.objective == "interval":
        return "segment_mAP"
    return "loss" if cfg.objective == "pretrain" else cfg.train.select_metric


def validate(
    core: nn.Module,
    evals: dict[str, DataLoader],
    cfg: TrainConfig,
    classes: list[str],
    device: torch.device,
    train_loss: float,
    align=None,
) -> tuple[float, dict[str, Any]]:
    """(score, the ``val_*`` columns of the epoch's log row). ``align``: the align objective,
    whose validation adds zero-shot accuracy (and selects by it, ``align.select``)."""
    t = cfg.train
    if "val" not in evals:
        return train_loss, {}
    if cfg.objective == "interval":
        from training.interval_train import validate_interval

        return validate_interval(core, evals["val"], cfg, classes)
    if cfg.objective == "pretrain":
        score = pretrain_val_loss(core, evals["val"], device, t.precision, cfg.seed)
        return score, {"val_loss": score}
    vm = evaluate(
        core, evals["val"], classes, cfg.model.mode, device, t.precision, t.loss,
        t.label_smoothing,
    )  # fmt: skip
    row = {f"val_{k}": vm[k] for k in ("loss", "accuracy", "macro_f1", "mAP")}
    if align is not None:
        zs = align.zero_shot(core, evals["val"])
        row.update(val_zeroshot_accuracy=zs["accuracy"], temperature=zs["temperature"])
        if cfg.align.select == "zeroshot":
            return zs["accuracy"], row
    return vm[select_metric(cfg)], row


def better(
    metric: str,
    new: float,
    best: float | None,
    new_loss: float | None = None,
    best_loss: float | None = None,
) -> bool:
    """Whether ``new`` improves on ``best`` (lower loss, higher anything else); a tie goes to
    the lower validation loss (``new_loss`` against ``best_loss``), so a run whose accuracy is
    already at its ceiling still keeps the epoch that is most sure of it."""
    if not math.isfinite(new):
        return False
    if best is None:
        return True
    if new == best and metric != "loss" and new_loss is not None and best_loss is not None:
        return math.isfinite(new_loss) and new_loss < best_loss
    return new < best if metric == "loss" else new > best
