"""Window → model inputs: the IMU slots resampled at the model's rate turned into normalised
spectrograms, the camera frames picked over the model's video span turned into the video tensor.

The artifact (``ModelMeta``) says the IMU rate and window length, the spectrogram normalisation,
the frame count, frame size and the seconds the frames span (DESIGN §6–§7).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from evimae_stream.preprocess import PreprocessConfig, frames_to_video_tensor, preprocess_imu
from evimae_stream.runtime.backends.base import ModelInputs
from evimae_stream.runtime.policy import Plan
from evimae_stream.types import PLACEMENTS
from evimae_stream.window import Window, WindowGeometry


@dataclass(frozen=True)
class ModelSpec:
    """What the runtime needs to know about the model (from the artifact's ``model.json``)."""

    classes: tuple[str, ...]
    modes: tuple[str, ...]
    imu_rate_hz: float
    window_s: float
    num_frames: int
    img_size: int
    video_span_s: float
    norm_mean: float
    norm_std: float
    spec_time: int = 320
    spec_freq: int = 128

    def __post_init__(self) -> None:
        if not self.classes or not self.modes:
            raise ValueError("ModelSpec needs classes and modes")
        if min(self.imu_rate_hz, self.window_s, self.video_span_s, self.norm_std) <= 0:
            raise ValueError("ModelSpec rates, spans and norm_std must be positive")

    @classmethod
    def from_meta(cls, meta, model=None) -> ModelSpec:
        """From an artifact's :class:`~evimae_stream.artifact.ModelMeta` (and the model's cfg)."""
        cfg = getattr(model, "cfg", None)
        return cls(
            classes=tuple(meta.classes),
            modes=tuple(meta.modes),
            imu_rate_hz=float(meta.imu_rate_hz),
            window_s=float(meta.window_s),
            num_frames=int(meta.num_frames),
            img_size=int(meta.img_size),
            video_span_s=float(meta.video_span_s),
            norm_mean=float(meta.norm_mean),
            norm_std=float(meta.norm_std),
            spec_time=int(getattr(cfg, "spec_time", 320)),
            spec_freq=int(getattr(cfg, "spec_freq", 128)),
        )

    @cached_property
    def geometry(self) -> WindowGeometry:
        """The model's window: where its IMU grid and frame times lie."""
        return WindowGeometry(self.window_s, self.imu_rate_hz, self.num_frames, self.video_span_s)

    @property
    def preprocess(self) -> PreprocessConfig:
        """The preprocessing settings of this model."""
        return PreprocessConfig(
            norm_mean=self.norm_mean,
            norm_std=self.norm_std,
            num_frames=self.num_frames,
            img_size=self.img_size,
            spec_time=self.spec_time,
            spec_freq=self.spec_freq,
        )


def build_inputs(
    window: Window, frames: list[np.ndarray] | None, plan: Plan, spec: ModelSpec
) -> ModelInputs:
    """The batch-1 model inputs of ``plan`` (IMU (1, 12, T, F), video (1, 3, N, S, S))."""
    imu = video = None
    if "imu" in plan.modalities:
        cols = []
        for p in PLACEMENTS:
            values = window.imu[plan.slots[p]]
            assert values is not None
            cols.append(values[:, :3])
        x = np.concatenate(cols, axis=1)  # (L, 12): 4 placements × xyz in g
        imu = preprocess_imu(x, spec.preprocess).unsqueeze(0)
    if "video" in plan.modalities:
        assert frames is not None
        video = frames_to_video_tensor(frames, spec.img_size).unsqueeze(0)
    return ModelInputs(imu, video)


def softmax(logits: torch.Tensor) -> np.ndarray:
    """(classes,) float64 probabilities of one window's logits."""
    return torch.softmax(logits.double().reshape(-1), dim=0).numpy()
