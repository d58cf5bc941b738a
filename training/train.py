"""Train EVI-MAE: ``python training/train.py --config configs/train/X.yaml [--set k=v ...]``.

Objectives: ``pretrain`` (masked IMU + video autoencoding with the contrastive and graph terms,
computed by :class:`evimae_stream.model.EviMaePretrain`), ``finetune`` (multimodal, imu_only
or video_only; from scratch, a pretrain checkpoint or a published EVI-MAE checkpoint) and
``align`` (IMU↔text and IMU↔video alignment into a frozen sentence encoder's space, IMU2CLIP on
our encoders, optionally with the fine-tune loss: :mod:`training.align`). Runs as
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
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from evimae_stream.errors import EvimaeError, InputError
from training import checkpoint as ckpt
from training import ddp
from training.channels import with_channels
from training.config import TrainConfig, load_config
from training.data import DataBundle
from training.epoch_log import EpochLog, row_line
from training.live_command import recipe_command
from training.optim import make_optimizer, make_scheduler
from training.prepare import Prepared, auto_precision, pick_device, prepare
from training.split import split_line
from training.stages import finetune_from, pretrain_stage
from training.step import TrainStep
from training.threads import set_threads
from training.validate import better, select_metric, validate
from training.windows import balance_report
from training.write_artifact import write_finetune, write_pretrain

log = logging.getLogger("training.train")


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
    set_threads(cfg.train.num_threads, "training and spectrogram cache")
    cfg = with_channels(cfg)
    if cfg.objective == "interval":  # on feature sequences, one process
        from training.interval_train import train_interval

        return train_interval(cfg, device)
    info = ddp.setup(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    try:
        if cfg.pretrain.epochs:
            stage = pretrain_stage(cfg)
            if info.main:
                print(f"pretraining stage: {stage.train.epochs} epochs in {stage.run_dir}")
            pre = train(stage, resume and "auto", device, info, None)
            cfg = finetune_from(cfg, stage)
            out = train(cfg, resume, device, info, bundle)
            return {**out, "pretrain": pre}
        return train(cfg, resume, device, info, bundle)
    finally:
        ddp.teardown(info)


def train(
    cfg: TrainConfig,
    resume: str | None,
    device: torch.device,
    info: ddp.DistInfo,
    bundle: DataBundle | None,
) -> dict[str, Any]:
    """prepare → epochs of ``step(batch)`` → validate → save; the outputs on rank 0."""
    run_dir, t = Path(cfg.run_dir), cfg.train
    if info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    p = prepare(cfg, device, info, bundle)
    bundle, loaders, core = p.bundle, p.loaders, p.core
    if info.main:
        print(f"class balance (windows per class per split), {len(bundle.classes)} classes:")
        print(balance_report(bundle.splits, bundle.classes), flush=True)
        print(split_line(bundle.split), flush=True)
        if p.init_report:
            print(p.init_report, flush=True)
    opt = make_optimizer(core, cfg)
    sched = make_scheduler(opt, cfg, p.steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=t.precision == "fp16")
    saved = {"model": core, "optimizer": opt, "scheduler": sched, "scaler": scaler}
    state = resume_state(resume, run_dir, saved, info)
    step = TrainStep(
        cfg, p.model, core, opt, sched, scaler, info, device,
        micro_per_epoch=len(loaders.train), rank_windows=len(loaders.sampler), align=p.align,
    )  # fmt: skip
    step.global_step = state.step
    elog = EpochLog(run_dir, info.main)
    for epoch in range(state.epoch, t.epochs):
        loaders.sampler.set_epoch(epoch)
        loaders.train_ds.set_epoch(epoch)
        step.begin_epoch(epoch)
        bar = tqdm(
            total=p.steps_per_epoch, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not info.main,
            file=sys.stderr, dynamic_ncols=True, leave=False,
        )  # fmt: skip
        for micro, batch in enumerate(loaders.train):
            if step.steps_in_epoch >= p.steps_per_epoch:
                break
            if step(micro, batch):
                bar.set_postfix(loss=f"{step.mean_loss:.4f}", win_s=f"{step.windows_per_s:.1f}")
                bar.update(1)
        bar.close()
        row = epoch_row(step, epoch, opt, info, device)
        state.epoch, state.step = epoch + 1, step.global_step
        if info.main:
            end_epoch(cfg, p, state, row, saved, device)
            elog.write(state.history)
            print(row_line(row), flush=True)
        ddp.barrier(info)
        if should_stop(t.patience, state, info, device):
            break
    elog.close()
    return finish(cfg, run_dir, p, device, state) if info.main else {}


def end_epoch(
    cfg: TrainConfig, p: Prepared, state: ckpt.TrainState, row: dict[str, Any],
    saved: dict[str, Any], device: torch.device,
) -> None:  # fmt: skip
    """Validate (rank 0), keep ``best.pt`` when the score improves and ``last.pt`` every
    ``train.checkpoint_every`` epochs; the row joins the history."""
    run_dir, evals, epoch = Path(cfg.run_dir) / "checkpoints", p.loaders.evals, state.epoch
    score, val_row = validate(
        p.core, evals, cfg, p.bundle.classes, device, row["train_loss"], p.align
    )
    row.update(val_row)
    val_loss = val_row.get("val_loss")
    improved = better(select_metric(cfg), score, state.best, val_loss, state.best_loss)
    if improved or (cfg.objective == "pretrain" and "val" not in evals):
        state.best, state.best_epoch, state.best_loss = score, epoch, val_loss
        ckpt.atomic_save(
            {"model": p.core.state_dict(), "epoch": epoch, "score": score}, run_dir / ckpt.BEST
        )
    row["best_epoch"] = state.best_epoch
    state.history.append(row)
    if epoch % cfg.train.checkpoint_every == 0 or epoch == cfg.train.epochs:
        ckpt.save_last(run_dir / ckpt.LAST, state, saved, cfg.to_dict())


def should_stop(
    patience: int, state: ckpt.TrainState, info: ddp.DistInfo, device: torch.device
) -> bool:
    """Early stopping: ``patience`` epochs without a better best epoch (rank 0 decides, every
    rank stops)."""
    stale = bool(patience) and info.main and state.epoch - state.best_epoch >= patience
    stop = ddp.all_reduce_mean(float(stale), info, device) > 0
    if stop and info.main:
        print(
            f"early stop after epoch {state.epoch}: no better validation score in {patience} "
            f"epochs (best epoch {state.best_epoch})",
            flush=True,
        )
    return stop


def resume_state(
    resume: str | None, run_dir: Path, saved: dict[str, Any], info: ddp.DistInfo
) -> ckpt.TrainState:
    """The loop's state: restored from ``--resume`` (a path or ``auto``), else fresh."""
    path = ckpt.resolve_resume(resume, run_dir)
    if path is None:
        if resume == "auto" and info.main:
            print("no checkpoint to resume from; starting fresh", flush=True)
        return ckpt.TrainState()
    state = ckpt.restore(path, saved)
    if info.main:
        print(f"resumed from {path} at epoch {state.epoch}", flush=True)
    return state


def epoch_row(
    step: TrainStep, epoch: int, opt: torch.optim.Optimizer, info: ddp.DistInfo,
    device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    """The epoch's training columns of ``log.csv`` (loss averaged and windows summed over
    ranks)."""
    elapsed = time.perf_counter() - step.started
    train_loss = ddp.all_reduce_mean(step.mean_loss, info, device)
    per_rank = ddp.gather_int(step.seen, info, device)
    return {
        "epoch": epoch + 1,
        "step": step.global_step,
        "lr": opt.param_groups[0]["lr"],
        "train_loss": train_loss,
        "windows": sum(per_rank),
        "windows_per_rank": "/".join(str(n) for n in per_rank),
        "windows_per_s": sum(per_rank) / max(1e-9, elapsed),
        "epoch_s": elapsed,
    }


def finish(
    cfg: TrainConfig, run_dir: Path, p: Prepared, device: torch.device, state: ckpt.TrainState
) -> dict[str, Any]:
    """Write the run's output (rank 0) and print where it went."""
    if cfg.objective == "pretrain":
        out = write_pretrain(p.core, cfg, run_dir, p.bundle, state.best_epoch)
        print(
            f"wrote pretrain checkpoint {out['pretrain_checkpoint']} "
            f"(best epoch {state.best_epoch})",
            flush=True,
        )
        return out
    out = write_finetune(
        p.core, cfg, run_dir, p.bundle, p.loaders.evals, device, state.best_epoch,
        state.history, p.init_report, p.align,
    )  # fmt: skip
    metrics = out["metrics"]
    split = "test" if "test" in metrics else "val"
    summary = metrics.get(split, {})
    by_mode = metrics.get(f"{split}_by_mode", {})
    print(
        f"wrote model artifact {out['artifact']}; {split} accuracy "
        f"{summary.get('accuracy', float('nan')):.4f}, macro-F1 "
        f"{summary.get('macro_f1', float('nan')):.4f}; by mode: "
        + ", ".join(f"{m} {v['accuracy']:.4f}" for m, v in by_mode.items()),
        flush=True,
    )
    if f"{split}_zeroshot" in metrics:  # objective align: recognised by the classes' texts
        zs = metrics[f"{split}_zeroshot"]
        print(f"{split} zero-shot accuracy {zs['accuracy']:.4f} (class prompts), temperature "
              f"{zs['temperature']:.4f}", flush=True)  # fmt: skip
    print("run it live:", flush=True)
    print(recipe_command(cfg, out["artifact"]), flush=True)  # the last line: the command
    return out


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
