"""Latency statistics: p50/p95/p99 over a bounded history."""

from __future__ import annotations

import numpy as np


class Percentiles:
    """Collects values (ms) and reports p50/p95/p99 (fixed memory: the newest ``keep``)."""

    def __init__(self, keep: int = 100_000) -> None:
        self._values: list[float] = []
        self.keep = keep
        self.count = 0

    def add(self, value: float) -> None:
        self.count += 1
        self._values.append(float(value))
        if len(self._values) > self.keep:
            del self._values[: len(self._values) - self.keep]

    def summary(self) -> dict[str, float | None]:
        """``{"p50", "p95", "p99", "mean"}`` in the values' unit (None when empty)."""
        if not self._values:
            return {"p50": None, "p95": None, "p99": None, "mean": None}
        v = np.asarray(self._values)
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        return {
            "p50": round(float(p50), 3),
            "p95": round(float(p95), 3),
            "p99": round(float(p99), 3),
            "mean": round(float(v.mean()), 3),
        }
