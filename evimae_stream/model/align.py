"""Language alignment of EVI-MAE (IMU2CLIP, Moon et al. 2022, on our encoders).

IMU2CLIP puts IMU windows, video and text in one embedding space: the text tower (there CLIP's,
here a frozen sentence encoder, :mod:`evimae_stream.language.text`) is fixed, and the IMU
encoder (and, without CLIP image weights offline, our own video encoder) learn projections into
its space with a symmetric InfoNCE loss, IMU↔text and IMU↔video.

Facts carried over from the published code (facebookresearch/imu2clip, ``lib/loss.py``,
``lib/train_modules.py``): cosine similarity of L2-normalised embeddings, InfoNCE in both
directions, the other towers frozen, temperature 0.1. Our departures, each for a reason:

- the temperature is learned (IMU2CLIP's code leaves it fixed at 0.1 with a TODO to learn it),
  CLIP-style: a log-parameterised scale ``exp(logit_scale)`` starting at 1 / 0.1 and clamped to
  at most 100, so it cannot run away;
- the two directions are averaged (CLIP) instead of summed, so the loss is on the scale of one
  cross-entropy and its weight means the same thing as the supervised loss's;
- IMU↔text has several positives per row: windows of one action share its text (a batch of 16
  windows of 9 actions holds repeats), and a repeated text is not a negative of itself. Each
  row's target is spread evenly over the windows with the same action (``positives``).

The heads are attached to the fine-tune model as its ``align`` submodule, so one
``model.safetensors`` holds them and the classifier's ``forward`` (what the backends run) is
untouched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: CLIP's bound on the learned scale: exp(logit_scale) <= 100 (temperature >= 0.01)
MAX_LOGIT_SCALE = math.log(100.0)
#: IMU2CLIP's fixed temperature, the learned one's starting point
INIT_TEMPERATURE = 0.1


@dataclass(frozen=True)
class AlignConfig:
    """Shapes of the alignment heads (validated): the encoder's pooled width ``feature_dim``
    (the fine-tune head's input), the text space's ``text_dim``, ``hidden`` (0: a linear
    projection; else a two-layer MLP of that width, GELU) and whether the video side has one."""

    feature_dim: int
    text_dim: int
    hidden: int = 0
    video: bool = True
    init_temperature: float = INIT_TEMPERATURE

    def __post_init__(self) -> None:
        if self.feature_dim < 1 or self.text_dim < 1 or self.hidden < 0:
            raise ValueError(
                f"align heads need feature_dim, text_dim >= 1 and hidden >= 0, got {self}"
            )
        if not 0.01 <= self.init_temperature <= 1.0:
            raise ValueError(f"init_temperature must be in [0.01, 1], got {self.init_temperature}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _projection(cfg: AlignConfig) -> nn.Module:
    if cfg.hidden == 0:
        return nn.Linear(cfg.feature_dim, cfg.text_dim)
    return nn.Sequential(
        nn.Linear(cfg.feature_dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.text_dim)
    )


class AlignHeads(nn.Module):
    """Projections of pooled IMU / video features into the text space, and the learned scale."""

    def __init__(self, cfg: AlignConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.imu_proj = _projection(cfg)
        self.video_proj = _projection(cfg) if cfg.video else None
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    @property
    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` clamped to [1, 100] (CLIP's clamp; no gradient outside)."""
        return self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE).exp()

    @property
    def temperature(self) -> float:
        return float(1.0 / self.scale.detach())

    def project_imu(self, feat: torch.Tensor) -> torch.Tensor:
        """``(B, feature_dim)`` → unit vectors ``(B, text_dim)``."""
        return F.normalize(self.imu_proj(feat.float()), dim=-1)

    def project_video(self, feat: torch.Tensor) -> torch.Tensor:
        """``(B, feature_dim)`` → unit vectors ``(B, text_dim)``."""
        if self.video_proj is None:
            raise ValueError("these align heads have no video projection")
        return F.normalize(self.video_proj(feat.float()), dim=-1)


def attach_heads(model: nn.Module, cfg: AlignConfig) -> AlignHeads:
    """Give a fine-tune model its ``align`` submodule (its keys become ``align.*``)."""
    heads = AlignHeads(cfg)
    model.add_module("align", heads)
    return heads


def embed(
    model: nn.Module, imu: torch.Tensor | None, video: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The language-space embeddings of a batch: ``imu`` from the IMU-only features, ``video``
    from the video-only features (each ``(B, text_dim)``, unit length) — for whichever input is
    given (IMU2CLIP aligns each modality's own encoder)."""
    heads: AlignHeads = model.align
    out = {}
    if imu is not None:
        out["imu"] = heads.project_imu(model.features(imu, None, "imu_only"))
    if video is not None and heads.video_proj is not None:
        out["video"] = heads.project_video(model.features(None, video, "video_only"))
    return out


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, positives: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE of unit vectors ``a`` (B, D) and ``b`` (B, D) at ``scale`` = 1/T.

    ``positives`` (B, B) bool: which pairs match (default: the diagonal, row i ↔ column i); a
    row's target is uniform over its positives. The mean of the a→b and b→a cross-entropies.
    """
    logits = scale * (a.float() @ b.float().T)  # (B, B)
    if positives is None:
        target = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    p = positives.float()
    rows = p / p.sum(dim=1, keepdim=True).clamp_min(1.0)
    cols = p.T / p.T.sum(dim=1, keepdim=True).clamp_min(1.0)
    return 0.5 * (F.cross_entropy(logits, rows) + F.cross_entropy(logits.T, cols))
