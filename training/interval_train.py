"""The ``interval`` objective's run: TIM's interval model trained on the window features of a
recogniser artifact (``interval.base_model``, default the bundled demo model).

prepare (features of every source through the base model, cached; the interval model) →
epochs of :class:`training.step.TrainStep` over random context crops → validation segment mAP
(:func:`validate_interval`, the best epoch kept) → the artifact: the base model's files, its
``model.json`` with the ``interval`` section, and ``interval.safetensors``
(:func:`training.write_artifact.write_interval`).
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evimae_stream.interval_eval import map_report, merged_windows, recognition_accuracy
from evimae_stream.interval_head import IntervalHead, IntervalMeta
from evimae_stream.model.interval import IntervalConfig, IntervalModel
from training import checkpoint as ckpt
from training import ddp
from training.config import TrainConfig
from training.epoch_log import EpochLog, row_line
from training.interval_data import CropSampler, LabelledSequence, load_sequences
from training.optim import make_optimizer, make_scheduler
from training.step import TrainStep

log = logging.getLogger(__name__)


def base_model_dir(cfg: TrainConfig) -> Path:
    from evimae_stream.commands.run import DEMO_MODEL

    return Path(cfg.interval.base_model) if cfg.interval.base_model else DEMO_MODEL


def interval_meta(cfg: TrainConfig, feat_dim: int, classes: list[str]) -> IntervalMeta:
    """The head's ``model.json`` section from the recipe (metrics added at the end)."""
    it = cfg.interval
    icfg = IntervalConfig(feat_dim, len(classes), it.dim, it.heads, it.layers)
    return IntervalMeta(
        icfg.to_dict(), list(classes), it.context_s, it.stride_s, it.query_min_size,
        it.nms_iou, it.min_score, it.open_score, it.refine,
    )  # fmt: skip


def _meta_of(core: nn.Module, cfg: TrainConfig, classes: list[str]) -> IntervalMeta:
    return interval_meta(cfg, core.cfg.feat_dim, classes)


def evaluate_sequences(head: IntervalHead, seqs: list[LabelledSequence], base_classes: list[str],
                       ignore) -> dict[str, Any]:  # fmt: skip
    """Segment mAP of the head and of the merged-window baseline (the recogniser's classes
    ``base_classes``; none: no baseline) over ``seqs`` (all segments pooled, as one long
    recording), and the head's recognition accuracy."""
    from evimae_stream.metrics import ScoredSegment

    det, base, truth, hits = [], [], [], []
    offset = 0.0
    for s in seqs:
        shift = lambda xs, o=offset: [  # noqa: E731
            ScoredSegment(x.start_s + o, x.end_s + o, x.label, x.score) for x in xs
        ]
        det += shift(head.detect(s.features))
        if base_classes:
            base += shift(merged_windows(s.features, base_classes, head.meta.stride_s))
        truth += shift(s.segments)
        acc = recognition_accuracy(head, s.features, s.segments, ignore)
        n = sum(g.label in head.classes for g in s.segments)
        if acc is not None:
            hits.append((acc * n, n))
        offset += float(s.features.t_end_s.max()) + 1000.0 if len(s.features) else 0.0
    total = sum(n for _, n in hits)
    return {
        "interval": map_report(det, truth, ignore),
        "merged_windows": map_report(base, truth, ignore) if base_classes else None,
        "recognition_accuracy": round(sum(h for h, _ in hits) / total, 4) if total else None,
        "sequences": len(seqs),
        "segments": len(truth),
    }


def validate_interval(core: nn.Module, seqs: list[LabelledSequence], cfg: TrainConfig,
                      classes: list[str]) -> tuple[float, dict[str, Any]]:  # fmt: skip
    """(validation segment mAP, the ``val_*`` log columns)."""
    was = core.training
    head = IntervalHead(core, _meta_of(core, cfg, classes))
    out = evaluate_sequences(head, seqs, [], cfg.interval.ignore)
    core.train(was)
    score = out["interval"]["mean"]
    score = float("nan") if score is None else score
    return score, {"val_segment_mAP": score, "val_recognition": out["recognition_accuracy"]}


def fit_interval(
    cfg: TrainConfig,
    splits: dict[str, list[LabelledSequence]],
    classes: list[str],
    device: torch.device,
) -> tuple[IntervalHead, list[dict]]:
    """Train the interval model on ``splits`` (random crops of ``train``, best epoch by the
    segment mAP of ``val``); returns the best head and the epoch history."""
    from training.validate import better, validate

    t, run_dir = cfg.train, Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = interval_meta(cfg, splits["train"][0].features.dim, classes)
    torch.manual_seed(cfg.seed)
    core = IntervalModel(meta.model_config).to(device)
    sampler = CropSampler(splits["train"], classes, meta, cfg)
    micro = math.ceil(cfg.interval.crops_per_epoch / t.batch_size)
    steps = max(1, math.ceil(micro / t.accum_steps))
    opt = make_optimizer(core, cfg)
    sched = make_scheduler(opt, cfg, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    step = TrainStep(cfg, core, core, opt, sched, scaler, ddp.DistInfo(), device, micro,
                     cfg.interval.crops_per_epoch)  # fmt: skip
    evals = {"val": splits["val"]} if splits.get("val") else {}
    elog, history, best, best_epoch = EpochLog(run_dir, True), [], None, 0
    best_path = run_dir / "checkpoints" / ckpt.BEST
    for epoch in range(t.epochs):
        step.begin_epoch(epoch)
        for i, batch in enumerate(sampler.epoch(epoch, t.batch_size)):
            step(i, batch)
        score, row = validate(core, evals, cfg, classes, device, step.mean_loss)
        row = {"epoch": epoch + 1, "step": step.global_step, "train_loss": step.mean_loss, **row}
        if better("segment_mAP" if evals else "loss", score, best):
            best, best_epoch = score, epoch + 1
            ckpt.atomic_save({"model": core.state_dict(), "epoch": epoch + 1}, best_path)
        row["best_epoch"] = best_epoch
        history.append(row)
        elog.write(history)
        print(row_line(row), file=sys.stdout, flush=True)
    elog.close()
    core.load_state_dict(ckpt.load(best_path)["model"])
    return IntervalHead(core.eval(), meta), history


def train_interval(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Run the ``interval`` objective (see the module doc); returns the summary."""
    from evimae_stream.commands.features import load_for_features
    from training.prepare import seed_everything
    from training.write_artifact import write_interval

    seed_everything(cfg.seed)
    base = base_model_dir(cfg)
    loaded = load_for_features(base)
    splits, classes = load_sequences(cfg, loaded)
    head, history = fit_interval(cfg, splits, classes, device)
    metrics: dict[str, Any] = {
        split: evaluate_sequences(head, seqs, list(loaded.spec.classes), cfg.interval.ignore)
        for split, seqs in splits.items()
        if seqs and split != "train"
    }
    metrics["best_epoch"] = max((r["best_epoch"] for r in history), default=0)
    out = write_interval(head.model, head.meta, base, cfg, metrics, history)
    split = "test" if "test" in metrics else "val"
    if split in metrics:
        m = metrics[split]
        base_map = (m["merged_windows"] or {}).get("mean")
        print(
            f"wrote model artifact {out['artifact']}; {split} segment mAP "
            f"{m['interval']['mean']} (merged windows {base_map}), recognition "
            f"{m['recognition_accuracy']}",
            flush=True,
        )
    return out
