"""The ``align`` objective (IMU2CLIP on EVI-MAE): what a training run needs beyond fine-tuning.

:class:`AlignObjective` holds the frozen text side — every class's pool of texts (its label and
the narrations of its training segments, :class:`~training.align_config.AlignSection`) embedded
once by the text encoder (:class:`~evimae_stream.language.text.TextCache`) — and computes the
loss of a batch: ``text_weight`` × InfoNCE(IMU, text) with the windows of one class as each
other's positives, ``video_weight`` × InfoNCE(IMU, video) (window ↔ its own video), and
``supervised_weight`` × the fine-tune loss, all from one pass of each encoder
(:mod:`evimae_stream.model.align`). It also scores zero-shot recognition with the classes'
prompt embeddings (validation, the artifact's metrics) and writes the artifact's ``language``
section.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from evimae_stream.errors import InputError
from evimae_stream.language.meta import LanguageMeta
from evimae_stream.language.text import TextCache
from evimae_stream.model.align import AlignConfig, attach_heads, contrastive_loss
from evimae_stream.sessions import open_session
from training.config import TrainConfig
from training.data import DataBundle
from training.evaluate import autocast, forward, metrics_from_scores
from training.losses import classification_loss
from training.windows import make_label_fn

log = logging.getLogger(__name__)


def class_texts(cfg: TrainConfig, bundle: DataBundle) -> dict[str, list[str]]:
    """Every class's text pool: its label text first, then the distinct narrations of its
    segments in the sessions that gave training windows (in order of appearance)."""
    a, d = cfg.align, cfg.data
    pools = {c: [a.label_template.replace("{}", a.label_texts.get(c, c))] for c in bundle.classes}
    if not a.narrations:
        return pools
    label_fn = make_label_fn(d.label_map, d.unlabelled)
    for src in bundle.sources:
        if src.get("kind") == "release" or "path" not in src:
            continue
        if not src.get("windows", {}).get("train"):
            continue
        with open_session(src["path"]) as session:
            for seg in session.labels:
                name = label_fn(seg.label)
                if seg.text and name in pools and seg.text not in pools[name]:
                    pools[name].append(seg.text)
    return pools


def _unit_mean(v: np.ndarray) -> np.ndarray:
    m = v.mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


class AlignObjective:
    """The text side of a run and the ``align`` loss (see the module doc)."""

    def __init__(self, cfg: TrainConfig, bundle: DataBundle, device: torch.device) -> None:
        self.cfg, self.classes, self.device = cfg, list(bundle.classes), device
        self.cache = TextCache(cfg.align.text_cache, where="objective align")
        self.pools = class_texts(cfg, bundle)
        self.pool_emb = [
            torch.from_numpy(self.cache.encode(self.pools[c])).to(device) for c in self.classes
        ]  # per class (n_c, D)
        self.class_emb = torch.from_numpy(
            np.stack([_unit_mean(e.cpu().numpy()) for e in self.pool_emb])
        ).to(device)  # (C, D)
        self.gen = torch.Generator().manual_seed(cfg.seed + 0x616C)
        counts = ", ".join(f"{c} {len(self.pools[c])}" for c in self.classes)
        log.info("align: texts per class: %s", counts)

    def heads_config(self, model: nn.Module) -> AlignConfig:
        a = self.cfg.align
        return AlignConfig(
            feature_dim=model.cfg.head_dim, text_dim=self.cache.id.dim, hidden=a.hidden,
            video=a.video_weight > 0,
        )  # fmt: skip

    def attach(self, model: nn.Module) -> None:
        """Give the freshly built model its projection heads."""
        attach_heads(model, self.heads_config(model))

    def _draw(self, labels: torch.Tensor) -> torch.Tensor:
        """One text embedding of each window's class, drawn at random ``(B, D)``."""
        rows = []
        for y in labels.tolist():
            pool = self.pool_emb[y]
            rows.append(pool[int(torch.randint(len(pool), (1,), generator=self.gen))])
        return torch.stack(rows)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], mode: str) -> torch.Tensor:
        """The weighted ``align`` loss of one micro-batch (see the module doc)."""
        a, heads = self.cfg.align, model.align
        labels = batch["label"]
        if bool((labels < 0).any()):
            raise InputError("objective align: a training window's label is not among the classes")
        f_imu = model.features(batch["imu"], None, "imu_only")  # (B, head_dim)
        z_imu = heads.project_imu(f_imu)  # (B, D)
        total = z_imu.new_zeros(())
        if a.text_weight > 0:
            same = labels[:, None] == labels[None, :]  # (B, B)
            total = total + a.text_weight * contrastive_loss(
                z_imu, self._draw(labels), heads.scale, same
            )
        f_vid = None
        if a.video_weight > 0:
            f_vid = model.features(None, batch["video"], "video_only")
            total = total + a.video_weight * contrastive_loss(
                z_imu, heads.project_video(f_vid), heads.scale
            )
        if a.supervised_weight > 0:
            if mode == "imu_only":
                logits = model.mlp_head(f_imu)
            elif mode == "video_only" and f_vid is not None:
                logits = model.mlp_head(f_vid)
            else:
                logits = forward(model, batch, mode)
            t = self.cfg.train
            sup = classification_loss(logits, batch["target"], t.loss, t.label_smoothing)
            total = total + a.supervised_weight * sup
        return total

    @torch.no_grad()
    def zero_shot(self, model: nn.Module, loader: DataLoader) -> dict[str, Any]:
        """Window metrics of recognising the classes by their prompt embeddings (IMU side)."""
        was = model.training
        model.eval()
        scores, targets, labels = [], [], []
        for batch in loader:
            imu = batch["imu"].to(self.device)
            with autocast(self.device, self.cfg.train.precision):
                z = model.align.project_imu(model.features(imu, None, "imu_only"))
            scores.append((z.float() @ self.class_emb.T).cpu())
            targets.append(batch["target"])
            labels.append(batch["label"])
        model.train(was)
        if not scores:
            return {"windows": 0}
        s, t, y = (torch.cat(x).numpy() for x in (scores, targets, labels))
        out = metrics_from_scores(s, t, y, self.classes)
        out["temperature"] = model.align.temperature
        return out

    def section(self, model: nn.Module) -> dict[str, Any]:
        """The artifact's ``language`` section for ``model`` (its best epoch loaded)."""
        return LanguageMeta(
            text_encoder=self.cache.id.to_dict(),
            heads=model.align.cfg.to_dict(),
            temperature=model.align.temperature,
            class_prompts={c: list(self.pools[c]) for c in self.classes},
            class_embeddings=[
                [round(float(x), 7) for x in row] for row in self.class_emb.cpu().numpy()
            ],
        ).to_dict()
