"""One training step: the loss of a micro-batch (pretrain, finetune, finetune with modality
dropout, or align), its backward pass, and the optimizer step at the end of each accumulation group.

Gradient accumulation equals one batch ``accum_steps`` times as big: each micro-batch's mean
loss is weighted by its share of the group's windows, so the accumulated gradient is the mean
over all of them (also for a short last group of the epoch). Under DDP only the last micro-batch
of a group synchronises gradients.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
from torch import nn

from training import ddp
from training.config import TrainConfig
from training.evaluate import autocast, forward
from training.losses import classification_loss


class TrainStep:
    """``step(micro, batch)`` over an epoch's micro-batches; counts windows and the mean loss."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        core: nn.Module,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
        info: ddp.DistInfo,
        device: torch.device,
        micro_per_epoch: int,
        rank_windows: int,
        align=None,
    ) -> None:
        self.cfg, self.t = cfg, cfg.train
        self.model, self.core, self.opt, self.sched, self.scaler = model, core, opt, sched, scaler
        self.info, self.device = info, device
        self.micro_per_epoch = micro_per_epoch
        self.rank_windows = rank_windows  # windows this rank sees per epoch
        self.group_windows = self.t.accum_steps * self.t.batch_size  # per optimizer step
        self.global_step = 0
        self.align = align  # the align objective (training.align.AlignObjective)

    def begin_epoch(self, epoch: int) -> None:
        """Reset the epoch's counters; the modality-dropout draws depend on (seed, epoch) only."""
        self.mode_rng = np.random.default_rng([self.cfg.seed + 7919, epoch])
        self.started = time.perf_counter()
        self.seen, self.loss_sum, self.steps_in_epoch = 0, 0.0, 0
        self.model.train()
        self.opt.zero_grad(set_to_none=True)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The objective's loss of one micro-batch (under autocast)."""
        if self.cfg.objective == "pretrain":
            return self.model(batch["imu"], batch.get("video"), motion=batch.get("motion"))["loss"]
        if self.cfg.objective == "interval":
            from training.interval_loss import interval_loss

            return interval_loss(self.model, batch, self.cfg.interval.positive_target)
        m = self.cfg.model
        mode = m.mode
        if self.align is not None:
            return self.align.loss(self.core, batch, mode)
        if m.modality_dropout > 0:
            u = self.mode_rng.random()
            p = m.modality_dropout
            mode = "imu_only" if u < p / 2 else "video_only" if u < p else mode
        logits = forward(self.model, batch, mode)
        return classification_loss(logits, batch["target"], self.t.loss, self.t.label_smoothing)

    def __call__(self, micro: int, batch: dict[str, torch.Tensor]) -> bool:
        """Forward and backward of micro-batch ``micro``; True when it completed an optimizer
        step."""
        t = self.t
        batch = {k: v.to(self.device) for k, v in batch.items()}
        last = (micro + 1) % t.accum_steps == 0 or micro + 1 == self.micro_per_epoch
        group = micro // t.accum_steps
        n = len(batch["target"])
        weight = n / min(self.group_windows, self.rank_windows - group * self.group_windows)
        sync = contextlib.nullcontext()
        if self.info.enabled and not last:
            sync = self.model.no_sync()
        with sync:
            with autocast(self.device, t.precision):
                loss = self.loss(batch)
            self.scaler.scale(loss * weight).backward()
        self.seen += n
        self.loss_sum += float(loss.detach()) * n
        if last:
            self._optimizer_step()
        return last

    def _optimizer_step(self) -> None:
        if self.t.grad_clip:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.core.parameters(), self.t.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        self.global_step += 1
        self.steps_in_epoch += 1

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def windows_per_s(self) -> float:
        """Windows per second over all ranks since the epoch began."""
        return self.seen * self.info.world / max(1e-9, time.perf_counter() - self.started)
