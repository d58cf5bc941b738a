"""Typed, validated configuration of the EVI-MAE fine-tune and pretraining models.

The config is what a model artifact's JSON stores (``to_dict``) and what rebuilds the model
(``from_dict``), so every field is a plain JSON value and every combination that cannot build a
working model is rejected here, with the field named, before any tensor is allocated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

_T = TypeVar("_T")


def _from_dict(cls: type[_T], data: dict[str, Any]) -> _T:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class EviMaeConfig:
    """Shape of one EVI-MAE encoder (+ classification head).

    Defaults are the published fine-tune configuration (``evimae_small``). ``num_classes`` 0
    means "no head" (the pretraining model); the fine-tune model needs at least one class.
    The joint (``blocks_u``) width and heads are the video ones, as in the published code, and
    the IMU width must be twice that: the IMU tokens are pooled 2d → d before the joint block.
    """

    num_classes: int = 0
    imu_embed_dim: int = 768
    imu_depth: int = 11
    imu_heads: int = 12
    video_embed_dim: int = 384
    video_depth: int = 12
    video_heads: int = 6
    joint_depth: int = 1
    mlp_ratio: float = 4.0
    num_frames: int = 16
    img_size: int = 224
    tubelet: int = 2
    patch: int = 16
    spec_time: int = 320
    spec_freq: int = 128
    imu_channels: int = 12
    use_graph: bool = True
    graph_hidden: int = 512
    graph_layers: int = 2
    #: feature dropout before each GIN layer (training mode only), as published (0.2)
    graph_dropout: float = 0.2

    def __post_init__(self) -> None:
        positive = [f.name for f in fields(self) if f.type == "int" and f.name != "num_classes"]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"num_classes must be an integer, got {self.num_classes!r}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if not isinstance(self.use_graph, bool):
            raise ValueError(f"use_graph must be true or false, got {self.use_graph!r}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")
        if not 0.0 <= self.graph_dropout < 1.0:
            raise ValueError(f"graph_dropout must be in [0, 1), got {self.graph_dropout}")
        if self.imu_embed_dim != 2 * self.video_embed_dim:
            raise ValueError(
                f"imu_embed_dim ({self.imu_embed_dim}) must be 2 x video_embed_dim "
                f"({self.video_embed_dim}): IMU tokens are pooled 2d -> d before the joint block"
            )
        for dim, heads in (("imu_embed_dim", "imu_heads"), ("video_embed_dim", "video_heads")):
            if getattr(self, dim) % getattr(self, heads):
                raise ValueError(
                    f"{dim} ({getattr(self, dim)}) must be divisible by {heads} "
                    f"({getattr(self, heads)})"
                )
        for name in ("spec_time", "spec_freq", "img_size"):
            if getattr(self, name) % self.patch:
                raise ValueError(
                    f"{name} ({getattr(self, name)}) must be a multiple of patch ({self.patch})"
                )
        if self.num_frames % self.tubelet:
            raise ValueError(
                f"num_frames ({self.num_frames}) must be a multiple of tubelet ({self.tubelet})"
            )
        if self.imu_channels % 3:
            raise ValueError(
                f"imu_channels ({self.imu_channels}) must be 3 per IMU (x, y, z acceleration)"
            )

    @property
    def num_imus(self) -> int:
        """IMUs (graph nodes); 3 input channels each."""
        return self.imu_channels // 3

    @property
    def imu_tokens(self) -> int:
        """Tokens per IMU: (freq / patch) x (time / patch), row-major over frequency."""
        return (self.spec_freq // self.patch) * (self.spec_time // self.patch)

    @property
    def video_tokens(self) -> int:
        """Video tokens: (frames / tubelet) x (size / patch)^2."""
        side = self.img_size // self.patch
        return (self.num_frames // self.tubelet) * side * side

    @property
    def head_dim(self) -> int:
        """Width of the classification head input (joint feature + graph readout)."""
        return self.video_embed_dim + (self.graph_hidden if self.use_graph else 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EviMaeConfig:
        """Rebuild from :meth:`to_dict` output; unknown fields are an error, missing default."""
        return _from_dict(cls, data)


#: what the pretraining decoder rebuilds of the masked video tokens
VIDEO_TARGETS = ("pixels", "motion", "pixels+motion")
MOTION_NORMS = ("patch_std", "patch")


@dataclass(frozen=True)
class PretrainConfig:
    """Decoder, masking and loss settings of the pretraining model (published defaults).

    Every default is the published WEAR/CMU-MMAC pretraining setting; ``contrast_bidirectional``
    and ``graph_detach_target`` are the two departures one may opt into (both off as published).
    """

    decoder_embed_dim: int = 192
    decoder_depth: int = 8
    decoder_heads: int = 3
    mask_ratio_imu: float = 0.75
    mask_ratio_video: float = 0.9
    mask_ratio_graph: float = 0.5
    contrast_weight: float = 0.01
    contrast_temperature: float = 0.05
    graph_weight: float = 10.0
    norm_pix_loss: bool = True
    #: average InfoNCE over both directions (published ``bidirect_contrast``, off by default:
    #: only each video picks its IMU, a softmax over the batch's IMU features)
    contrast_bidirectional: bool = False
    #: stop the graph term's gradient through its target, the masked nodes' own encoder
    #: features (published: not detached, so it also flows through the target into ``blocks_a``)
    graph_detach_target: bool = False
    #: what the video decoder rebuilds: ``pixels`` (published), ``motion`` (MME's trajectories,
    #: ``decoder_pred_motion``) or ``pixels+motion`` (both heads)
    video_target: str = "pixels"
    #: weight of the motion term; MME tracks a ``motion_grid``² lattice of points per patch for
    #: ``motion_steps`` frames, and standardises each token's displacements over its points
    #: (``motion_norm`` "patch_std", MME's K400 recipe) or divides them by the patch size
    #: ("patch", which keeps the patch's own translation)
    motion_weight: float = 1.0
    motion_steps: int = 2
    motion_grid: int = 2
    motion_norm: str = "patch_std"

    def __post_init__(self) -> None:
        for name in ("decoder_embed_dim", "decoder_depth", "decoder_heads", "motion_steps",
                     "motion_grid"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.decoder_embed_dim % self.decoder_heads:
            raise ValueError(
                f"decoder_embed_dim ({self.decoder_embed_dim}) must be divisible by "
                f"decoder_heads ({self.decoder_heads})"
            )
        for name in ("mask_ratio_imu", "mask_ratio_video", "mask_ratio_graph"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        for name in ("norm_pix_loss", "contrast_bidirectional", "graph_detach_target"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.contrast_weight < 0 or self.graph_weight < 0 or self.motion_weight < 0:
            raise ValueError("contrast_weight, graph_weight and motion_weight must be >= 0")
        if self.video_target not in VIDEO_TARGETS:
            raise ValueError(
                f"video_target must be one of {', '.join(VIDEO_TARGETS)}, got {self.video_target!r}"
            )
        if self.motion_norm not in MOTION_NORMS:
            raise ValueError(
                f"motion_norm must be one of {', '.join(MOTION_NORMS)}, got {self.motion_norm!r}"
            )
        if not self.contrast_temperature > 0:
            raise ValueError(
                f"contrast_temperature must be positive, got {self.contrast_temperature}"
            )

    @property
    def wants_pixels(self) -> bool:
        return "pixels" in self.video_target

    @property
    def wants_motion(self) -> bool:
        return "motion" in self.video_target

    @property
    def motion_dim(self) -> int:
        """Motion target width per video token: steps × grid² points × (dx, dy)."""
        return self.motion_steps * self.motion_grid**2 * 2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown fields are an error."""
        return _from_dict(cls, data)
