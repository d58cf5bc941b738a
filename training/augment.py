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

Wearable augmentations (ours, off by default; :class:`ImuAugment`): how one person's sensor
differs from another's and one session from the next. Per sensor (each slot that was recorded;
slots filled from another sensor are filled again afterwards, as at run time): a random
rotation of the sensor frame about the window's gravity direction (how the strap sits) and a
small tilt about a random horizontal axis, a gain (calibration); per window: a time
warp (tempo) and a time shift; and sensor dropout: a recorded slot removed and refilled by the
runtime's rule (:func:`evimae_stream.runtime.policy.fill_slots`), so the model learns the fills
it sees when a sensor drops out live.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evimae_stream.preprocess_video import frames_to_video_tensor
from evimae_stream.runtime.policy import fill_slots
from evimae_stream.types import PLACEMENTS


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


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (Rodrigues)."""
    k = axis / max(float(np.linalg.norm(axis)), 1e-12)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def frame_rotation(
    acc: np.ndarray, yaw_deg: float, tilt_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """A random sensor-frame rotation for the (L, 3) window ``acc``: up to ``yaw_deg`` about its
    mean acceleration (gravity, when the sensor is not accelerating on average) and up to
    ``tilt_deg`` about a random axis perpendicular to it."""
    g = acc.mean(axis=0)
    if float(np.linalg.norm(g)) < 1e-6:
        g = np.array([0.0, 0.0, 1.0])
    r = rotation(g, np.deg2rad(rng.uniform(-yaw_deg, yaw_deg)))
    if tilt_deg > 0:
        h = np.cross(g, rng.normal(size=3))
        r = rotation(h, np.deg2rad(rng.uniform(-tilt_deg, tilt_deg))) @ r
    return r


def warp(x: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """``x`` (L, C) read at times ``(t − c)·scale + c + shift`` samples (``c`` the centre),
    linearly interpolated and held at the edges: a tempo change and a shift."""
    n = len(x)
    t = np.arange(n, dtype=np.float64)
    c = (n - 1) / 2.0
    src = np.clip((t - c) * scale + c + shift, 0, n - 1)
    return np.stack([np.interp(src, t, x[:, k]) for k in range(x.shape[1])], axis=1)


@dataclass(frozen=True)
class ImuAugment:
    """The wearable augmentations of one recipe (see the module doc); 0 turns one off.

    ``yaw_deg``/``tilt_deg``: rotation about gravity / tilt; ``gain``: each sensor scaled by a
    factor in ``[1 − gain, 1 + gain]``; ``time_warp``: tempo factor
    in ``[1 − w, 1 + w]``; ``shift_s``: shift up to ± that many seconds; ``dropout``: the
    probability that one recorded slot (of two or more) is dropped and refilled."""

    yaw_deg: float = 0.0
    tilt_deg: float = 0.0
    gain: float = 0.0
    time_warp: float = 0.0
    shift_s: float = 0.0
    dropout: float = 0.0
    rate_hz: float = 50.0

    @property
    def active(self) -> bool:
        return any(
            (self.yaw_deg, self.tilt_deg, self.gain, self.time_warp, self.shift_s, self.dropout)
        )

    def __call__(
        self, imu: np.ndarray, filled: tuple[str, ...], rng: np.random.Generator
    ) -> np.ndarray:
        """An augmented copy of the (L, 4·C) window whose slots ``filled`` were copies (C: 3
        acceleration channels, or 6 with the gyroscope, turned by the same rotation)."""
        c = imu.shape[1] // len(PLACEMENTS)
        slots = {p: imu[:, c * i : c * i + c].astype(np.float64) for i, p in enumerate(PLACEMENTS)}
        recorded = [p for p in PLACEMENTS if p not in filled]
        if self.dropout and len(recorded) > 1 and rng.random() < self.dropout:
            recorded.remove(recorded[int(rng.integers(len(recorded)))])
        scale = 1.0 + rng.uniform(-self.time_warp, self.time_warp)
        shift = rng.uniform(-self.shift_s, self.shift_s) * self.rate_hz
        out = {}
        for p in recorded:
            x = slots[p]
            if self.yaw_deg or self.tilt_deg:
                r = frame_rotation(x[:, :3], self.yaw_deg, self.tilt_deg, rng)
                x = np.concatenate([x[:, k : k + 3] @ r.T for k in range(0, c, 3)], axis=1)
            if self.gain:
                x = x * (1.0 + rng.uniform(-self.gain, self.gain))
            if self.time_warp or self.shift_s:
                x = warp(x, scale, shift)
            out[p] = x
        fill = fill_slots(out, True)
        assert fill is not None  # at least one recorded slot is kept
        return np.concatenate([out[fill[p]] for p in PLACEMENTS], axis=1).astype(np.float32)
