"""An IMU window → the model's IMU input, in the representation its artifact names
(``ModelMeta.imu_input``, carried into :attr:`PreprocessConfig.imu_input`).

One function for training, ``--eval``, ``evaluate_artifact.py`` and the runtime, so a model is
fed live exactly what it was trained on:

* ``spectrogram`` (the published input): :func:`evimae_stream.preprocess.preprocess_imu`,
  (…, 12, T, F) normalised log-power spectrograms of the mean-removed acceleration;
* ``time`` (ours, :mod:`evimae_stream.model.patch_imu`): the resampled window itself, channels
  first, (…, C, L) float32 in the sensor's units — nothing removed, so the window's mean
  (the gravity direction, i.e. the posture) and the sign and phase of the motion survive.
"""

from __future__ import annotations

import numpy as np
import torch

from evimae_stream.preprocess import PreprocessConfig, preprocess_imu


def time_input(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(L, C) or (B, L, C) window → (C, L) or (B, C, L) float32 (channels first)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.ndim not in (2, 3):
        raise ValueError(f"an IMU window is (L, C) or (B, L, C), got shape {tuple(t.shape)}")
    return t.transpose(-1, -2).contiguous()


def imu_model_input(x: np.ndarray | torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """The model input of the (L, C) or (B, L, C) window ``x`` for ``config.imu_input``."""
    if config.imu_input == "time":
        return time_input(x)
    return preprocess_imu(x, config)
