"""A classical baseline on the same windows: per-window statistics + a linear classifier.

Features per axis of one IMU window (L, 3): mean, standard deviation, minimum, maximum, energy
(mean of squares) and dominant frequency (the largest non-DC bin of the magnitude spectrum,
in Hz) — 18 numbers, standardised with the training set's mean and std. Classifiers, in plain
numpy/torch (no scikit-learn): nearest centroid, and multinomial logistic regression (softmax
linear layer, L2-regularised, full-batch L-BFGS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FEATURES = ("mean", "std", "min", "max", "energy", "dominant_hz")


def window_features(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """(L, C) window → (C · 6,) features, per axis in :data:`FEATURES` order."""
    x = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x - x.mean(axis=0), axis=0))  # (L/2+1, C)
    freqs = np.fft.rfftfreq(len(x), d=1.0 / rate_hz)
    dom = freqs[1:][np.argmax(spec[1:], axis=0)] if len(freqs) > 1 else np.zeros(x.shape[1])
    stats = np.stack(
        [x.mean(0), x.std(0), x.min(0), x.max(0), (x**2).mean(0), dom], axis=1
    )  # (C, 6)
    return stats.reshape(-1)


def feature_matrix(windows: list[np.ndarray], rate_hz: float) -> np.ndarray:
    """(N, C · 6) features of a list of (L, C) windows."""
    return np.stack([window_features(w, rate_hz) for w in windows])


@dataclass
class Standardiser:
    """Feature-wise (x − mean) / std fitted on the training set."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def nearest_centroid(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, num_classes: int
) -> np.ndarray:
    """Class of the nearest (Euclidean) training-class centroid for each test row."""
    centroids = np.stack(
        [
            x_train[y_train == k].mean(axis=0) if (y_train == k).any() else np.full(
                x_train.shape[1], np.inf
            )
            for k in range(num_classes)
        ]
    )  # fmt: skip
    d = ((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return np.argmin(d, axis=1)


def logistic_regression(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    num_classes: int,
    l2: float = 1e-2,
    seed: int = 0,
) -> np.ndarray:
    """Softmax linear classifier (cross-entropy + ``l2``·‖W‖², L-BFGS); test predictions."""
    torch.manual_seed(seed)
    xt = torch.as_tensor(x_train, dtype=torch.float64)
    yt = torch.as_tensor(y_train, dtype=torch.int64)
    lin = torch.nn.Linear(xt.shape[1], num_classes).double()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return lin(torch.as_tensor(x_test, dtype=torch.float64)).argmax(dim=1).numpy()
