"""Temporal smoothing of class probabilities: the mean of the last ``N`` predictions.

``--smooth N`` trades ``(N−1)/2`` strides of lag for fewer flickering labels; ``N = 1`` (the
default) leaves predictions as they are. Windows without a prediction do not enter the mean, and
a gap of more than ``N`` windows starts over.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class Smoother:
    """Moving average over the last ``n`` probability vectors."""

    def __init__(self, n: int = 1) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"--smooth must be a whole number >= 1, got {n!r}")
        self.n = n
        self._hist: deque[tuple[int, np.ndarray]] = deque(maxlen=n)

    def update(self, index: int, probs: np.ndarray) -> np.ndarray:
        """Add window ``index``'s probabilities; returns the smoothed vector."""
        while self._hist and index - self._hist[0][0] >= self.n:
            self._hist.popleft()
        self._hist.append((index, np.asarray(probs, dtype=np.float64)))
        return np.mean([p for _, p in self._hist], axis=0)
