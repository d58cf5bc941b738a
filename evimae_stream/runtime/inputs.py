"""Window → model inputs: the IMU slots resampled at the model's rate turned into the model's
IMU input (normalised spectrograms, or the time-domain window: :mod:`evimae_stream.imu_input`),
the camera frames picked over the model's video span turned into the video tensor.

The artifact (``ModelMeta``, the one owner of the model's input contract) says the IMU rate and
window length, the spectrogram normalisation, the frame count, frame size and the seconds the
frames span (DESIGN §6–§7); :class:`ModelSpec` is the runtime's frozen view of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evimae_stream.artifact import ModelMeta
from evimae_stream.imu_input import imu_model_input
from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.preprocess_video import frames_to_video_tensor
from evimae_stream.runtime.backends.base import ModelInputs
from evimae_stream.runtime.policy import Plan
from evimae_stream.types import ACC_AXES, PLACEMENTS
from evimae_stream.window import Window, WindowGeometry


@dataclass(frozen=True)
class ModelSpec:
    """What the runtime needs to know about the model: built by :meth:`from_meta` from the
    artifact's :class:`~evimae_stream.artifact.ModelMeta`, which owns these facts; the window
    geometry and the preprocessing are the meta's own."""

    classes: tuple[str, ...]
    modes: tuple[str, ...]
    geometry: WindowGeometry
    preprocess: PreprocessConfig
    #: the channels of each IMU slot the model reads (``ModelMeta.imu_channels``)
    imu_channels: tuple[str, ...] = ACC_AXES

    def __post_init__(self) -> None:
        if not self.classes or not self.modes:
            raise ValueError("ModelSpec needs classes and modes")

    @classmethod
    def from_meta(cls, meta: ModelMeta) -> ModelSpec:
        """The runtime's view of an artifact's :class:`~evimae_stream.artifact.ModelMeta`."""
        return cls(
            tuple(meta.classes), tuple(meta.modes), meta.geometry, meta.preprocess,
            tuple(meta.imu_channels or ACC_AXES),
        )  # fmt: skip

    @property
    def imu_rate_hz(self) -> float:
        return self.geometry.imu_rate_hz

    @property
    def window_s(self) -> float:
        return self.geometry.window_s

    @property
    def video_span_s(self) -> float:
        return self.geometry.video_span_s

    @property
    def num_frames(self) -> int:
        return self.geometry.num_frames

    @property
    def img_size(self) -> int:
        return self.preprocess.img_size


def usable_imus(window: Window, spec: ModelSpec) -> tuple[dict[str, bool], dict[str, str]]:
    """The window's IMUs the model can read, and why each other stream is missing: an IMU
    that sends fewer channels than the model reads (acceleration only, under a gyro model) is
    missing like a silent one, so the plan fills its slot from another IMU or runs without
    IMUs, and its health says why."""
    present, missing = dict(window.imu_present), dict(window.missing)
    need = len(spec.imu_channels)
    for p in PLACEMENTS:
        values = window.imu.get(p)
        if values is not None and values.shape[1] < need:
            present[p] = False
            missing[p] = (
                f"sends {values.shape[1]} channels, the model reads {','.join(spec.imu_channels)}"
                " (use a sensor that sends them, or a model without the gyroscope)"
            )
    return present, missing


def build_inputs(
    window: Window, frames: list[np.ndarray] | None, plan: Plan, spec: ModelSpec
) -> ModelInputs:
    """The batch-1 model inputs of ``plan`` (IMU (1, 12, T, F) spectrograms or (1, 12, L)
    time-domain, as the artifact's ``imu_input`` says; video (1, 3, N, S, S))."""
    imu = video = None
    if "imu" in plan.modalities:
        cols = []
        for p in PLACEMENTS:
            values = window.imu[plan.slots[p]]
            assert values is not None and values.shape[1] >= len(spec.imu_channels)
            cols.append(values[:, : len(spec.imu_channels)])
        x = np.concatenate(cols, axis=1)  # (L, 4·C): 4 placements × the channels it reads
        imu = imu_model_input(x, spec.preprocess).unsqueeze(0)
    if "video" in plan.modalities:
        assert frames is not None
        video = frames_to_video_tensor(frames, spec.img_size).unsqueeze(0)
    return ModelInputs(imu, video)


def softmax(logits: torch.Tensor) -> np.ndarray:
    """(classes,) float64 probabilities of one window's logits."""
    return torch.softmax(logits.double().reshape(-1), dim=0).numpy()
