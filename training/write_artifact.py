"""What a finished run leaves: the pretrained encoder checkpoint, or the fine-tuned model's
artifact (:func:`evimae_stream.artifact.save_artifact`) with its validation and test metrics in
every mode it was trained for, and ``results.json``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from evimae_stream.artifact import ModelMeta, save_artifact
from evimae_stream.model import imu_channels_of, imu_input_of
from training import checkpoint as ckpt
from training.config import TrainConfig
from training.data import DataBundle
from training.evaluate import evaluate
from training.prepare import trained_modes

log = logging.getLogger(__name__)


def load_best(core: nn.Module, run_dir: Path) -> None:
    """Load ``checkpoints/best.pt`` into ``core`` when there is one."""
    best_path = run_dir / "checkpoints" / ckpt.BEST
    if best_path.is_file():
        core.load_state_dict(ckpt.load(best_path)["model"])


def write_pretrain(
    core: nn.Module, cfg: TrainConfig, run_dir: Path, bundle: DataBundle, best_epoch: int
) -> dict[str, Any]:
    """``<run_dir>/pretrain_encoder.pt`` from the best epoch; the summary."""
    load_best(core, run_dir)
    out = run_dir / ckpt.PRETRAIN_ENCODER
    ckpt.atomic_save(
        {"model": core.state_dict(), "variant": cfg.model.variant,
         "overrides": cfg.model.overrides, "best_epoch": best_epoch, "windows": bundle.counts(),
         "imu_norm": [cfg.imu.norm_mean, cfg.imu.norm_std]},
        out,
    )  # fmt: skip
    return {"pretrain_checkpoint": str(out), "best_epoch": best_epoch}


def final_metrics(
    core: nn.Module, cfg: TrainConfig, evals: dict[str, DataLoader], classes: list[str],
    device: torch.device, best_epoch: int,
) -> dict[str, Any]:  # fmt: skip
    """Validation and test metrics of the recipe's mode, and a summary per trained mode."""
    t = cfg.train
    metrics: dict[str, Any] = {"best_epoch": best_epoch, "select_metric": t.select_metric}
    for split in ("val", "test"):
        if split not in evals:
            continue
        by_mode = {
            m: evaluate(core, evals[split], classes, m, device, t.precision, t.loss,
                        t.label_smoothing)
            for m in trained_modes(cfg)
        }  # fmt: skip
        metrics[split] = by_mode[cfg.model.mode]
        metrics[f"{split}_by_mode"] = {
            m: {k: v[k] for k in ("accuracy", "macro_f1", "mAP", "windows")}
            for m, v in by_mode.items()
        }
    if "test" not in evals:
        log.warning("no test split: the artifact carries validation metrics only")
    return metrics


def model_meta(
    core: nn.Module, cfg: TrainConfig, bundle: DataBundle, metrics: dict[str, Any],
    history: list[dict[str, Any]], init_report: str | None, language: dict | None = None,
) -> ModelMeta:  # fmt: skip
    """The artifact's ``model.json``: the input contract, classes, modes, data and metrics."""
    mc = core.cfg
    imu_input = imu_input_of(mc)
    published = imu_input == "spectrogram"  # the published input: no contract fields to add
    split_counts = {
        s: {c: sum(1 for it in items if it.labels[0] == c) for c in bundle.classes}
        for s, items in bundle.splits.items()
    }
    return ModelMeta(
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
        modes=trained_modes(cfg),
        imu_input=None if published else imu_input,
        imu_channels=None if published else list(imu_channels_of(mc)),
        training={
            "objective": cfg.objective,
            "config": cfg.to_dict(),
            "imu_fill_missing": cfg.imu.fill_missing,
            "window_label": "evimae_stream.truth.window_truth: the label at the window centre",
            "data": {
                "sources": bundle.sources,
                "windows": bundle.counts(),
                "windows_per_class": split_counts,
                "split": bundle.split,
                "imu_channels": bundle.channels,
            },
            "init": init_report or cfg.model.init,
            "epochs_run": len(history),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "history": history,
        },
        metrics=metrics,
        language=language,
    )


def write_finetune(
    core: nn.Module, cfg: TrainConfig, run_dir: Path, bundle: DataBundle,
    evals: dict[str, DataLoader], device: torch.device, best_epoch: int,
    history: list[dict[str, Any]], init_report: str | None, align=None,
) -> dict[str, Any]:  # fmt: skip
    """The artifact of the best epoch and ``<run_dir>/results.json``; the summary. ``align``:
    the align objective (zero-shot metrics and the ``language`` section)."""
    load_best(core, run_dir)
    core.eval()
    metrics = final_metrics(core, cfg, evals, bundle.classes, device, best_epoch)
    metrics["split"] = bundle.split
    language = None
    if align is not None:
        for split in ("val", "test"):
            if split in evals:
                metrics[f"{split}_zeroshot"] = align.zero_shot(core, evals[split])
        language = align.section(core)
    meta = model_meta(core, cfg, bundle, metrics, history, init_report, language)
    out = save_artifact(core, meta, cfg.output_dir)
    (run_dir / "results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"artifact": str(out), "metrics": metrics}


def write_interval(
    core: nn.Module, imeta, base: Path, cfg: TrainConfig, metrics: dict[str, Any],
    history: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The ``interval`` objective's artifact: the base recogniser as it was, its model.json with
    the ``interval`` section (context, stride, config, metrics) and ``interval.safetensors``."""
    from evimae_stream.artifact import load_artifact
    from evimae_stream.interval_head import save_interval

    model, meta = load_artifact(base)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    imeta.metrics = metrics
    meta.interval = save_interval(core, imeta, out).to_dict()
    meta.training = {
        **meta.training,
        "interval": {"base_model": str(base), "config": cfg.to_dict(), "history": history},
    }
    save_artifact(model, meta, out)
    (Path(cfg.run_dir) / "results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"artifact": str(out), "metrics": metrics}
