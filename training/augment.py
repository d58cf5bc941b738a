"""The published training augmentations (training split only; never at evaluation).

- Video: multi-scale crop (VideoMAE's ``GroupMultiScaleCrop`` idea): crop height and width are
  each a scale of the frame's short side drawn from ``scales`` (at most one step apart, so the
  aspect never distorts much), placed at a random position; the same crop for every frame of
  the window; the crop then goes through the runtime's resize + normalisation
  (:func:`evimae_stream.preprocess_video.frames_to_video_tensor`). Training frames are stored as the
  runtime sees them (already ``S×S``, :class:`training.windows.FrameStore`), so the crop is
  taken from that view: scale 1 is exactly the runtime's input, and the aspect the model sees
  in training is the one it sees live.
- IMU: additive Gaussian noise (in g) on the resampled window, before the spectrogram.
"""

from __future__ import annotations

import numpy as np
import torch

from evimae_stream.preprocess_video import frames_to_video_tensor


def crop_box(
    h: int, w: int, scales: tuple[float, ...], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """One random multi-scale crop ``(y, x, height, width)`` of an ``h × w`` frame."""
    short = min(h, w)
    i = int(rng.integers(len(scales)))
    j = int(np.clip(i + rng.integers(-1, 2), 0, len(scales) - 1))
    ch = max(1, min(h, round(short * scales[i])))
    cw = max(1, min(w, round(short * scales[j])))
    y = int(rng.integers(h - ch + 1))
    x = int(rng.integers(w - cw + 1))
    return y, x, ch, cw


def multiscale_crop(frames: list[np.ndarray], box: tuple[int, int, int, int]) -> list[np.ndarray]:
    """The crop ``box`` (:func:`crop_box`) applied to every frame of a window."""
    y, x, ch, cw = box
    return [f[y : y + ch, x : x + cw] for f in frames]


def add_imu_noise(imu: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``imu`` (L, C) + N(0, std²) g, float32."""
    return (imu + rng.normal(0.0, std, size=imu.shape)).astype(np.float32)


def video_tensor(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """The runtime's video transform: (3, T, size, size) float32, ImageNet-normalised."""
    return frames_to_video_tensor(frames, size)
