"""Train EVI-MAE: ``python training/train.py --config configs/train/X.yaml [--set k=v ...]``.

Objectives: ``pretrain`` (masked IMU + video autoencoding with the contrastive and graph terms,
computed by :class:`evimae_stream.model.EviMaePretrain`) and ``finetune`` (multimodal, imu_only
or video_only; from scratch, a pretrain checkpoint or a published EVI-MAE checkpoint). Runs as
one process or under ``torchrun`` (DDP: gloo on CPU, nccl on GPU; rank 0 logs and saves).

Each epoch: train (tqdm bar with loss and windows/s), evaluate on the validation split, append
to ``<run_dir>/log.csv`` (and TensorBoard when it imports), save ``checkpoints/last.pt`` (resume
with ``--resume auto``) and, when validation improves, ``checkpoints/best.pt``. At the end the
best checkpoint is evaluated on the test split and written as a model artifact
(:func:`evimae_stream.artifact.save_artifact`) with its config, data and test metrics.
Exit codes: 0 done, 2 bad config/data (one line naming the key or file).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from evimae_stream.artifact import ModelMeta, save_artifact
from evimae_stream.device import cpu_has_amx
from evimae_stream.errors import EvimaeError, InputError
from evimae_stream.model import (
    EviMaeConfig,
    PretrainConfig,
    create_model,
    create_pretrain_model,
    model_config,
    pretrain_config,
)
from evimae_stream.types import MODES
from training import checkpoint as ckpt
from training import ddp
from training.config import TrainConfig, load_config
from training.data import (
    DataBundle,
    WindowDataset,
    collate,
    ensure_synthetic,
    load_data,
    preprocess_config,
)
from training.evaluate import autocast, evaluate, forward
from training.losses import classification_loss
from training.motion_targets import MotionTargets, motion_spec
from training.windows import balance_report

log = logging.getLogger("training.train")


# ----------------------------------------------------------------------------- set-up


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"config train.device: {name} requested but CUDA is not available")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def modalities(cfg: TrainConfig) -> tuple[bool, bool]:
    """(needs IMU, needs video) for the objective and mode."""
    if cfg.objective == "pretrain" or cfg.model.modality_dropout > 0:
        return True, True
    return cfg.model.mode != "video_only", cfg.model.mode != "imu_only"


def trained_modes(cfg: TrainConfig) -> list[str]:
    """Modes the fine-tuned model was trained (and is declared) for."""
    return list(MODES) if cfg.model.modality_dropout > 0 else [cfg.model.mode]


def encoder_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``model.overrides`` minus the pretraining-only (decoder/masking) fields, so one recipe's
    overrides serve both objectives."""
    return {k: v for k, v in overrides.items() if k not in PretrainConfig.__dataclass_fields__}


def encoder_config(cfg: TrainConfig) -> EviMaeConfig:
    """The encoder shape of the recipe's model (frame count and size the data is cut for)."""
    try:
        return model_config(cfg.model.variant, 1, **encoder_overrides(cfg.model.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None


def load_recipe_data(cfg: TrainConfig, mcfg: EviMaeConfig) -> DataBundle:
    """The windows of the recipe's sources as a run loads them: the modalities its objective and
    mode need, unlabelled windows kept for pretraining, frames at the model's input size."""
    need_imu, need_video = modalities(cfg)
    return load_data(
        cfg, mcfg.num_frames, need_imu, need_video, labelled=cfg.objective != "pretrain",
        img_size=mcfg.img_size,
    )  # fmt: skip


def build_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    m = cfg.model
    try:
        if cfg.objective == "pretrain":
            return create_pretrain_model(m.variant, **m.overrides)
        return create_model(m.variant, num_classes, **encoder_overrides(m.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None


def init_weights(model: nn.Module, cfg: TrainConfig) -> str | None:
    """Load ``model.init`` weights; returns the report line (None from scratch)."""
    m = cfg.model
    if m.init == "scratch":
        return None
    path = Path(m.init_path)
    if not path.is_file():
        raise InputError(f"{path}: model.init_path not found")
    if m.init == "official":
        from evimae_stream.model.checkpoint import read_checkpoint

        state = read_checkpoint(path)
    else:
        state = ckpt.load(path).get("model", {})
    return ckpt.load_encoder_weights(model, state, str(path))


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


# ----------------------------------------------------------------------------- logging


class EpochLog:
    """``log.csv`` (rewritten from the history each epoch, so a resumed run has no duplicate
    rows) and TensorBoard scalars when ``torch.utils.tensorboard`` imports."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.path = run_dir / "log.csv"
        self.enabled = enabled
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception:  # tensorboard is optional
                self.tb = None

    def write(self, history: list[dict[str, Any]]) -> None:
        if not self.enabled or not history:
            return
        keys = list(dict.fromkeys(k for row in history for k in row))
        with self.path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(history)
        if self.tb is not None:
            row = history[-1]
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["epoch"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def motion_targets(cfg: TrainConfig) -> MotionTargets | None:
    """The motion-trajectory targets a pretraining recipe's ``video_target`` asks for."""
    if cfg.objective != "pretrain":
        return None
    m = cfg.model
    try:
        spec = motion_spec(encoder_config(cfg), pretrain_config(m.variant, **m.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None
    return MotionTargets(spec) if spec is not None else None


# ----------------------------------------------------------------------------- training


def _loaders(
    bundle: DataBundle, cfg: TrainConfig, info: ddp.DistInfo, pcfg, need_imu: bool, need_video: bool
) -> tuple[WindowDataset, DataLoader, DistributedSampler, dict[str, DataLoader]]:
    common = {"need_imu": need_imu, "need_video": need_video, "motion": motion_targets(cfg)}
    train_ds = WindowDataset(
        bundle.splits["train"], bundle.store, bundle.classes, pcfg, train=True,
        crop_scales=tuple(cfg.augment.crop_scales), imu_noise_std=cfg.augment.imu_noise_std,
        seed=cfg.seed, **common,
    )  # fmt: skip
    sampler = DistributedSampler(
        train_ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=cfg.seed
    )
    train_loader = DataLoader(
        train_ds,
        batch_size=cfg.train.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
    )
    evals = {}
    for split in ("val", "test"):
        if bundle.splits[split]:
            ds = WindowDataset(bundle.splits[split], bundle.store, bundle.classes, pcfg, **common)
            evals[split] = DataLoader(
                ds, batch_size=cfg.train.batch_size, shuffle=False, collate_fn=collate
            )
    return train_ds, train_loader, sampler, evals


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
        imu, video = batch["imu"].to(device), batch["video"].to(device)
        with autocast(device, precision):
            out = model(imu, video, generator=gen, motion=batch.get("motion"))
        total += float(out["loss"]) * len(imu)
        n += len(imu)
    model.train(was)
    return total / max(1, n)


def _better(metric: str, new: float, best: float | None) -> bool:
    if not math.isfinite(new):
        return False
    if best is None:
        return True
    return new < best if metric == "loss" else new > best


def auto_precision(device: torch.device) -> str:
    """What ``train.precision: auto`` means on ``device``: bf16 where it is fast (CUDA with bf16
    support, CPUs with AMX), fp16 on older GPUs, else fp32 (bf16 without AMX is emulated: slow)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_amx() else "fp32"


def run(
    cfg: TrainConfig, resume: str | None = None, bundle: DataBundle | None = None
) -> dict[str, Any]:
    """Train per ``cfg``; returns a summary (artifact path, metrics) on rank 0.

    ``bundle``: windows already cut by the caller (e.g. ``training/wear_excerpts.py``); the
    config's sources are then only recorded, not read.
    """
    device = pick_device(cfg.train.device)
    if cfg.train.precision == "auto":
        cfg.train.precision = auto_precision(device)
        log.info("train.precision auto: %s on %s", cfg.train.precision, device.type)
    if cfg.train.precision == "fp16" and device.type != "cuda":
        raise InputError("config train.precision: fp16 needs CUDA (GradScaler); use bf16 on CPU")
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    info = ddp.setup(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    try:
        return _run(cfg, resume, device, info, bundle)
    finally:
        ddp.teardown(info)


def _run(
    cfg: TrainConfig,
    resume: str | None,
    device: torch.device,
    info: ddp.DistInfo,
    bundle: DataBundle | None,
):
    run_dir = Path(cfg.run_dir)
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    seed_everything(cfg.seed)
    need_imu, need_video = modalities(cfg)
    mcfg = encoder_config(cfg)
    # rank 0 generates synthetic sessions once; the others wait and read them
    pretrain = cfg.objective == "pretrain"
    if bundle is None:
        if info.main:
            for src in cfg.data.sources:
                if src.kind == "synthetic":
                    ensure_synthetic(cfg, src)
        ddp.barrier(info)
        bundle = load_recipe_data(cfg, mcfg)
    classes = bundle.classes
    if info.main:
        print(f"class balance (windows per class per split), {len(classes)} classes:")
        print(balance_report(bundle.splits, classes), flush=True)
        mb = bundle.store.nbytes / 1e6
        log.info(
            "windows %s, %d cached frames (%.0f MB)", bundle.counts(), len(bundle.store.frames), mb
        )
    if not pretrain and not bundle.splits["val"]:
        raise InputError(
            "no validation windows: add a source with split: val or set data.val_fraction > 0"
        )
    pcfg = preprocess_config(cfg, mcfg.num_frames, mcfg.img_size)
    train_ds, train_loader, sampler, evals = _loaders(bundle, cfg, info, pcfg, need_imu, need_video)
    t0 = time.perf_counter()
    for ds in [train_ds] + [ld.dataset for ld in evals.values()]:
        ds.warm_cache()
    if info.main:
        log.info("spectrogram cache ready in %.1f s", time.perf_counter() - t0)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, len(classes)).to(device)
    init_report = init_weights(model, cfg) if not pretrain else None
    if init_report and info.main:
        print(init_report, flush=True)
    core = model
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    t = cfg.train
    micro_per_epoch = len(train_loader)
    rank_windows = len(sampler)  # windows this rank sees per epoch
    group_windows = t.accum_steps * t.batch_size  # windows per optimizer step (but the last)
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / t.accum_steps))
    if t.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, t.max_steps_per_epoch)
    opt = make_optimizer(core, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=t.precision == "fp16")

    start_epoch, global_step, best, best_epoch, history = 0, 0, None, -1, []
    resume_path = ckpt.resolve_resume(resume, run_dir)
    if resume_path is not None:
        state = ckpt.load(resume_path)
        core.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, global_step = state["epoch"], state["step"]
        best, best_epoch, history = state["best"], state["best_epoch"], state["history"]
        ckpt.set_rng_state(state["rng"])
        if info.main:
            print(f"resumed from {resume_path} at epoch {start_epoch}", flush=True)
    elif resume == "auto" and info.main:
        print("no checkpoint to resume from; starting fresh", flush=True)

    elog = EpochLog(run_dir, info.main)
    select = "loss" if pretrain else t.select_metric
    mode_rng_seed = cfg.seed + 7919
    for epoch in range(start_epoch, t.epochs):
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        mode_rng = np.random.default_rng([mode_rng_seed, epoch])
        model.train()
        started = time.perf_counter()
        seen, loss_sum, loss_n, step_in_epoch = 0, 0.0, 0, 0
        bar = tqdm(
            total=steps_per_epoch, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not info.main,
            file=sys.stderr, dynamic_ncols=True, leave=False,
        )  # fmt: skip
        opt.zero_grad(set_to_none=True)
        for micro, batch in enumerate(train_loader):
            if step_in_epoch >= steps_per_epoch:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            last_micro = (micro + 1) % t.accum_steps == 0 or micro + 1 == micro_per_epoch
            # each micro-batch's mean loss weighted by its share of the step's windows: the
            # accumulated gradient is the mean over all of them, as one batch of
            # accum_steps x batch_size would give (also for a short last step of the epoch)
            group = micro // t.accum_steps
            n = len(batch["target"])
            weight = n / min(group_windows, rank_windows - group * group_windows)
            sync = contextlib.nullcontext() if last_micro or not info.enabled else model.no_sync()
            with sync:
                with autocast(device, t.precision):
                    if pretrain:
                        out = model(batch["imu"], batch["video"], motion=batch.get("motion"))
                        loss = out["loss"]
                    else:
                        mode = cfg.model.mode
                        if cfg.model.modality_dropout > 0:
                            u = mode_rng.random()
                            p = cfg.model.modality_dropout
                            mode = "imu_only" if u < p / 2 else "video_only" if u < p else mode
                        logits = forward(model, batch, mode)
                        loss = classification_loss(
                            logits, batch["target"], t.loss, t.label_smoothing
                        )
                scaler.scale(loss * weight).backward()
            seen += n
            loss_sum += float(loss.detach()) * n
            loss_n += n
            if last_micro:
                if t.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(core.parameters(), t.grad_clip)
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                sched.step()
                global_step += 1
                step_in_epoch += 1
                rate = seen * info.world / max(1e-9, time.perf_counter() - started)
                bar.set_postfix(loss=f"{loss_sum / loss_n:.4f}", win_s=f"{rate:.1f}")
                bar.update(1)
        bar.close()
        elapsed = time.perf_counter() - started
        train_loss = ddp.all_reduce_mean(loss_sum / max(1, loss_n), info, device)
        per_rank = ddp.gather_int(seen, info, device)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": global_step,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": train_loss,
            "windows": sum(per_rank),
            "windows_per_rank": "/".join(str(n) for n in per_rank),
            "windows_per_s": sum(per_rank) / max(1e-9, elapsed),
            "epoch_s": elapsed,
        }
        improved = False
        if info.main:
            if "val" in evals:
                if pretrain:
                    score = pretrain_val_loss(core, evals["val"], device, t.precision, cfg.seed)
                    row["val_loss"] = score
                else:
                    vm = evaluate(
                        core, evals["val"], classes, cfg.model.mode, device, t.precision,
                        t.loss, t.label_smoothing,
                    )  # fmt: skip
                    row.update({f"val_{k}": vm[k] for k in ("loss", "accuracy", "macro_f1", "mAP")})
                    score = vm[select]
            else:
                score = train_loss
            improved = _better(select, score, best) or (pretrain and "val" not in evals)
            if improved:
                best, best_epoch = score, epoch + 1
                ckpt.atomic_save(
                    {"model": core.state_dict(), "epoch": epoch + 1, "score": score},
                    run_dir / "checkpoints" / ckpt.BEST,
                )
            row["best_epoch"] = best_epoch
            history.append(row)
            if (epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == t.epochs:
                ckpt.atomic_save(
                    {
                        "model": core.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "scaler": scaler.state_dict(),
                        "epoch": epoch + 1,
                        "step": global_step,
                        "best": best,
                        "best_epoch": best_epoch,
                        "history": history,
                        "rng": ckpt.rng_state(),
                        "config": cfg.to_dict(),
                    },
                    run_dir / "checkpoints" / ckpt.LAST,
                )
            elog.write(history)
            msg = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
            print(msg, flush=True)
        ddp.barrier(info)
    elog.close()
    if not info.main:
        return {}
    if pretrain:
        return _finish_pretrain(core, cfg, run_dir, bundle, best_epoch)
    return _finish_finetune(core, cfg, run_dir, bundle, evals, device, pcfg, best_epoch, history,
                            init_report)  # fmt: skip


def _finish_pretrain(core, cfg, run_dir: Path, bundle: DataBundle, best_epoch: int):
    best_path = run_dir / "checkpoints" / ckpt.BEST
    state = ckpt.load(best_path)["model"] if best_path.is_file() else core.state_dict()
    out = run_dir / ckpt.PRETRAIN_ENCODER
    ckpt.atomic_save(
        {"model": state, "variant": cfg.model.variant, "overrides": cfg.model.overrides,
         "best_epoch": best_epoch, "windows": bundle.counts(),
         "imu_norm": [cfg.imu.norm_mean, cfg.imu.norm_std]},
        out,
    )  # fmt: skip
    print(f"wrote pretrain checkpoint {out} (best epoch {best_epoch})", flush=True)
    return {"pretrain_checkpoint": str(out), "best_epoch": best_epoch}


def _finish_finetune(
    core, cfg, run_dir, bundle, evals, device, pcfg, best_epoch, history, init_report
):
    t = cfg.train
    best_path = run_dir / "checkpoints" / ckpt.BEST
    if best_path.is_file():
        core.load_state_dict(ckpt.load(best_path)["model"])
    core.eval()
    metrics: dict[str, Any] = {"best_epoch": best_epoch, "select_metric": t.select_metric}
    modes = trained_modes(cfg)
    for split in ("val", "test"):
        if split not in evals:
            continue
        by_mode = {
            m: evaluate(core, evals[split], bundle.classes, m, device, t.precision, t.loss,
                        t.label_smoothing)
            for m in modes
        }  # fmt: skip
        metrics[split] = by_mode[cfg.model.mode]
        metrics[f"{split}_by_mode"] = {
            m: {k: v[k] for k in ("accuracy", "macro_f1", "mAP", "windows")}
            for m, v in by_mode.items()
        }
    if "test" not in evals:
        log.warning("no test split: the artifact carries validation metrics only")
    mc = core.cfg
    split_counts = {
        s: {c: sum(1 for it in items if it.labels[0] == c) for c in bundle.classes}
        for s, items in bundle.splits.items()
    }
    meta = ModelMeta(
        variant=cfg.model.variant,
        model_config=mc.to_dict(),
        classes=list(bundle.classes),
        imu_rate_hz=cfg.imu.rate_hz,
        window_s=cfg.imu.window_s,
        norm_mean=cfg.imu.norm_mean,
        norm_std=cfg.imu.norm_std,
        num_frames=mc.num_frames,
        img_size=mc.img_size,
        video_span_s=cfg.video_span_s,
        modes=modes,
        training={
            "objective": cfg.objective,
            "config": cfg.to_dict(),
            "preprocess": pcfg.to_dict(),
            "imu_fill_missing": cfg.imu.fill_missing,
            "window_label": "label at the window centre (t_ref - window_s / 2)",
            "data": {
                "sources": bundle.sources,
                "windows": bundle.counts(),
                "windows_per_class": split_counts,
            },
            "init": init_report or cfg.model.init,
            "epochs_run": len(history),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "history": history,
        },
        metrics=metrics,
    )
    out = save_artifact(core, meta, cfg.output_dir)
    (run_dir / "results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    summary = metrics.get("test", metrics.get("val", {}))
    by_mode = metrics.get("test_by_mode", metrics.get("val_by_mode", {}))
    print(
        f"wrote model artifact {out}; {'test' if 'test' in metrics else 'val'} accuracy "
        f"{summary.get('accuracy', float('nan')):.4f}, macro-F1 "
        f"{summary.get('macro_f1', float('nan')):.4f}; by mode: "
        + ", ".join(f"{m} {v['accuracy']:.4f}" for m, v in by_mode.items()),
        flush=True,
    )
    return {"artifact": str(out), "metrics": metrics}


# ----------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train.py", description="Pretrain or fine-tune EVI-MAE and write a model artifact."
    )
    p.add_argument("--config", help="YAML recipe (configs/train/*.yaml)")
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field by dotted key, e.g. --set train.lr=1e-4 (repeatable)",
    )  # fmt: skip
    p.add_argument("--resume", help="checkpoint path, or 'auto' for <run_dir>/checkpoints/last.pt")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else (logging.INFO if rank0 else logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load_config(args.config, args.sets)
        run(cfg, args.resume)
    except EvimaeError as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("train.py: interrupted; resume with --resume auto", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
