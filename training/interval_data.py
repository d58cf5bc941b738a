"""Feature sequences of labelled sessions for the ``interval`` objective, and TIM's random
context crops over them.

Each source session is replayed through the base model once (``evimae-stream features``' cache,
:mod:`evimae_stream.feature_cache`), its labels renamed by ``data.label_map`` and the
``interval.ignore`` labels (breaks) dropped. A training crop is a random context of
``context_s`` seconds (:func:`evimae_stream.interval_head.context_inputs`, the inference rule)
with its ground-truth segments clipped to it; its queries are the ground-truth intervals
(recognition) and ``train_queries`` drawn from the dense pool (detection), labelled by
:func:`evimae_stream.intervals.label_queries`; each window is labelled for the window head by
the segment at its centre (the rule window labels follow everywhere; background where none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evimae_stream.errors import InputError
from evimae_stream.feature_cache import FeatureCache, FeatureSequence
from evimae_stream.interval_head import IntervalMeta, context_inputs
from evimae_stream.intervals import dense_queries, label_queries
from evimae_stream.metrics import ScoredSegment
from training.config import TrainConfig
from training.data import ensure_synthetic

log = logging.getLogger(__name__)

#: ground-truth queries per crop (padded)
MAX_GT = 8


@dataclass
class LabelledSequence:
    """One session's features and its action segments (classes already mapped)."""

    name: str
    features: FeatureSequence
    segments: list[ScoredSegment]


def source_paths(cfg: TrainConfig) -> list[tuple[Path, str]]:
    """(session path, split) of every source: synthetic ones generated on first use, the
    session, directory and glob ones resolved as the other objectives resolve them."""
    from training.sources import resolve_sessions

    out: list[tuple[Path, str]] = []
    for key, src in cfg.data.all_sources():
        if src.kind == "release":
            raise InputError(f"config {key}: the interval objective reads sessions, not clips")
        if src.kind == "synthetic":
            out.append((ensure_synthetic(cfg, src), src.split))
    return out + [(ref.path, ref.split) for ref in resolve_sessions(cfg.data)]


def load_sequences(cfg: TrainConfig, loaded) -> tuple[dict[str, list[LabelledSequence]], list[str]]:
    """The labelled sequences of every split and the class list (``data.classes`` or every
    label of the training split, sorted)."""
    from evimae_stream.commands.features import cached_features
    from evimae_stream.sessions import open_session

    it = cfg.interval
    cache = FeatureCache(it.feature_dir or Path(cfg.run_dir) / "features")
    splits: dict[str, list[LabelledSequence]] = {"train": [], "val": [], "test": []}
    for path, split in source_paths(cfg):
        entry, _ = cached_features(cache, loaded, path, it.stride_s)
        session = open_session(path)
        try:
            segs = [
                ScoredSegment(s.start_s, s.end_s, cfg.data.label_map.get(s.label, s.label))
                for s in session.labels
            ]
        finally:
            session.close()
        segs = [s for s in segs if s.label not in it.ignore and s.end_s > s.start_s]
        splits[split].append(LabelledSequence(str(path), cache.load(entry), segs))
    if not splits["train"]:
        raise InputError("config data.sources: the interval objective needs a train source")
    classes = cfg.data.classes or sorted({s.label for q in splits["train"] for s in q.segments})
    if not classes:
        raise InputError("config data.sources: the training sessions have no labelled actions")
    return splits, list(classes)


def window_labels(segs: list[ScoredSegment], centres: np.ndarray, classes: list[str]
                  ) -> np.ndarray:  # fmt: skip
    """The class id of the segment holding each window centre ``(n,)``; −1: background."""
    out = np.full(len(centres), -1, np.int64)
    for s in segs:
        if s.label in classes:
            out[(centres >= s.start_s) & (centres < s.end_s)] = classes.index(s.label)
    return out


def gt_in_context(
    segs: list[ScoredSegment], start_s: float, context_s: float, classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth segments overlapping the context, clipped, in context units, with class ids
    (segments of unknown classes left out)."""
    rows, ids = [], []
    for s in segs:
        a, b = max(s.start_s, start_s), min(s.end_s, start_s + context_s)
        if b - a > 1e-6 and s.label in classes:
            rows.append(((a - start_s) / context_s, (b - start_s) / context_s))
            ids.append(classes.index(s.label))
    return np.asarray(rows, np.float32).reshape(-1, 2), np.asarray(ids, np.int64)


class CropSampler:
    """Random context crops of training sequences as batches (see the module doc)."""

    def __init__(self, seqs: list[LabelledSequence], classes: list[str], meta: IntervalMeta,
                 cfg: TrainConfig) -> None:  # fmt: skip
        self.seqs = [s for s in seqs if len(s.features)]
        self.classes = classes
        self.meta = meta
        self.it = cfg.interval
        self.pool = dense_queries(self.it.query_min_size / 2)
        self.seed = cfg.seed

    def crop(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One random context's inputs and query targets."""
        seq = self.seqs[int(rng.integers(len(self.seqs)))]
        f, c = seq.features, self.meta.context_s
        lo, hi = float(f.t_end_s.min()) - c / 4, float(f.t_end_s.max()) - 3 * c / 4
        start = float(rng.uniform(lo, max(lo, hi)))
        ctx = context_inputs(f, start, self.meta)
        present = ctx.present[0].clone()
        u = rng.random()
        if u < self.it.modality_drop:  # either modality may be missing
            present[:, 0 if u < self.it.modality_drop / 2 else 1] = False
        gt, gt_ids = gt_in_context(seq.segments, start, c, self.classes)
        take = rng.permutation(len(gt))[:MAX_GT]
        gt, gt_ids = gt[take], gt_ids[take]
        dense = self.pool[rng.permutation(len(self.pool))[: self.it.train_queries]]
        labels, targets, ious = label_queries(dense, gt, gt_ids, self.it.iou_threshold)
        n_gt = len(gt)
        queries = np.zeros((MAX_GT + len(dense), 2), np.float32)
        queries[:n_gt], queries[MAX_GT:] = gt, dense
        qlab = np.full(len(queries), -1, np.int64)
        qlab[:n_gt], qlab[MAX_GT:] = gt_ids, labels
        qtgt = np.zeros_like(queries)
        qtgt[:n_gt], qtgt[MAX_GT:] = gt, targets
        qw = np.zeros(len(queries), np.float32)  # loss weight: padding 0, positives their tIoU
        qw[:n_gt] = 1.0
        qw[MAX_GT:] = np.where(labels >= 0, ious, 1.0)
        wlab = np.full(len(present), -2, np.int64)  # −2: padding, no window
        centres = 0.5 * (f.t_start_s[ctx.rows] + f.t_end_s[ctx.rows])
        wlab[: len(ctx.rows)] = window_labels(seq.segments, centres, self.classes)
        return {
            "feats": ctx.feats[0], "present": present, "times": ctx.times[0],
            "queries": torch.from_numpy(queries), "labels": torch.from_numpy(qlab),
            "targets": torch.from_numpy(qtgt), "weights": torch.from_numpy(qw),
            "window_labels": torch.from_numpy(wlab),
        }  # fmt: skip

    def epoch(self, epoch: int, batch_size: int):
        """``crops_per_epoch`` crops in batches (seeded by the recipe seed and the epoch)."""
        rng = np.random.default_rng([self.seed + 4241, epoch])
        n = self.it.crops_per_epoch
        for b0 in range(0, n, batch_size):
            items = [self.crop(rng) for _ in range(min(batch_size, n - b0))]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            batch["target"] = batch["labels"]  # TrainStep counts a batch by its first axis
            yield batch
