"""The optimizer and its learning-rate schedule (per optimizer step)."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam/AdamW; the classification head (``mlp_head``) at ``lr × head_lr_mult``."""
    t = cfg.train
    head = [p for n, p in model.named_parameters() if n.startswith("mlp_head") and p.requires_grad]
    body = [
        p for n, p in model.named_parameters() if not n.startswith("mlp_head") and p.requires_grad
    ]
    groups = [{"params": body, "lr": t.lr}]
    if head:
        groups.append({"params": head, "lr": t.lr * t.head_lr_mult})
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-optimizer-step LR factor: linear warm-up, then MultiStepLR-by-epoch / cosine / flat."""
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == "multistep":
            epoch = step // max(1, steps_per_epoch)
            return t.gamma ** sum(epoch >= m for m in t.milestones)
        if t.schedule == "cosine":
            done = (step - t.warmup_steps) / max(1, total - t.warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
