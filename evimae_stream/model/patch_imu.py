"""Ours: an IMU classifier on the time-domain signal and the window's posture (issue 18).

The published input (DESIGN §6) subtracts each channel's window mean and keeps a power
spectrogram, so it throws away the gravity direction (the limb's posture) and the sign and
phase of the motion: forward elevation and abduction, or internal and external rotation, differ
mostly in exactly those. This variant reads the raw resampled window instead (input
representation ``time``, :mod:`evimae_stream.imu_input`):

* posture: each slot's window mean (B, S·C) → one token;
* motion: the mean-removed window cut into patches of ``patch`` samples; each patch of every
  slot and channel (S·C·patch numbers) → Linear → one token, plus the fixed sinusoid table
  over the patch index: N tokens per window. One token spans all slots (their own weights
  in the Linear), so a slot filled from another sensor costs nothing extra;
* the posture token and the N motion tokens → ``depth`` pre-norm blocks (the published
  :class:`~evimae_stream.model.layers.Block`, shared norms) → LayerNorm → [posture token,
  mean of the motion tokens] → LN → Linear(classes).

Cheap on a CPU: no spectrogram, ~100 tokens of 64–128 dims, so a training window costs well
under a millisecond, which is what lets a 2-core machine run enough epochs on a few thousand
windows. The published ``evimae_small``/``evimae_tiny`` are untouched; this is a registry
variant of its own (``imu_patch_tiny``, ``imu_patch_small``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evimae_stream.model.layers import Block, sinusoid_table
from evimae_stream.types import ACC_AXES, GYRO_AXES, PLACEMENTS

#: the input representation this model reads (``ModelMeta.imu_input``)
REPRESENTATION = "time"


@dataclass(frozen=True)
class PatchImuConfig:
    """Shape of one :class:`PatchImuNet`; ``to_dict``/``from_dict`` are what ``model.json``
    stores. ``imu_channels`` = slots × channels per slot (12: 4 slots × xyz acceleration).
    ``num_frames``/``img_size`` exist for the artifact's shared fields; the model reads no video.
    """

    num_classes: int = 0
    imu_channels: int = 12
    embed_dim: int = 64
    depth: int = 2
    heads: int = 2
    mlp_ratio: float = 2.0
    patch: int = 10
    dropout: float = 0.1
    gyro_scale: float = 0.01
    num_frames: int = 1
    img_size: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"{f.name} must be an integer, got {v!r}")
            if f.type == "int" and f.name != "num_classes" and v < 1:
                raise ValueError(f"{f.name} must be at least 1, got {v!r}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        per_slot = (len(ACC_AXES), len(ACC_AXES + GYRO_AXES))
        if self.imu_channels not in [len(PLACEMENTS) * c for c in per_slot]:
            raise ValueError(
                f"imu_channels must be {len(PLACEMENTS)} slots × 3 (acceleration) or × 6 "
                f"(+ gyroscope), got {self.imu_channels}"
            )
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must divide by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def slot_channels(self) -> int:
        """Channels per IMU slot (3: xyz acceleration)."""
        return self.imu_channels // len(PLACEMENTS)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The channels of each slot the model reads, in order (``ModelMeta.imu_channels``)."""
        return (ACC_AXES + GYRO_AXES)[: self.slot_channels]

    @property
    def head_dim(self) -> int:
        """Width of the classification head input (posture token + mean motion token)."""
        return 2 * self.embed_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatchImuConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"PatchImuConfig: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


class PatchImuNet(nn.Module):
    """``model(imu, video=None, mode="imu_only") -> logits (B, num_classes)``; ``imu`` is the
    time-domain window (B, S·C, L) in the sensor's units (acceleration in g)."""

    modes = ("imu_only",)

    def __init__(self, cfg: PatchImuConfig) -> None:
        if cfg.num_classes < 1:
            raise ValueError(f"the classifier needs num_classes >= 1, got {cfg.num_classes}")
        super().__init__()
        self.cfg = cfg
        d, c = cfg.embed_dim, cfg.slot_channels
        self.posture = nn.Linear(cfg.imu_channels, d)
        self.patch_embed = nn.Linear(cfg.imu_channels * cfg.patch, d)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        width = cfg.head_dim
        self.mlp_head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.num_classes))
        scale = [1.0] * len(ACC_AXES) + [cfg.gyro_scale] * (c - len(ACC_AXES))
        self.register_buffer(
            "channel_scale", torch.tensor(scale * len(PLACEMENTS)).view(1, -1, 1), persistent=False
        )  # (1, S·C, 1): g stays, deg/s × gyro_scale

    def tokens(self, imu: torch.Tensor) -> torch.Tensor:
        """(B, S·C, L) → (B, 1 + N, D): the posture token, then one token per time patch."""
        b, sc, length = imu.shape
        imu = imu * self.channel_scale
        mean = imu.mean(dim=2)  # (B, S·C): the gravity direction of each slot
        x = imu - mean.unsqueeze(2)
        pad = (-length) % self.cfg.patch
        x = F.pad(x, (0, pad), mode="replicate") if pad else x
        n = x.shape[2] // self.cfg.patch
        x = x.reshape(b, sc, n, self.cfg.patch).transpose(1, 2)  # (B, N, S·C, P)
        x = self.patch_embed(x.reshape(b, n, -1))  # (B, N, D)
        x = x + sinusoid_table(n, x.shape[2]).to(x)
        return torch.cat([self.posture(mean).unsqueeze(1), x], dim=1)

    def forward(
        self, imu: torch.Tensor, video: torch.Tensor | None = None, mode: str = "imu_only"
    ) -> torch.Tensor:
        if mode != "imu_only":
            raise ValueError(f"{type(self).__name__} reads the IMU only, not mode {mode!r}")
        x = self.drop(self.tokens(imu))
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)  # (B, 1 + N, D)
        feat = torch.cat([x[:, 0], x[:, 1:].mean(dim=1)], dim=1)  # (B, 2D)
        return self.mlp_head(self.drop(feat))
