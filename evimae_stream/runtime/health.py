"""Stream health for events and the summary, and latency statistics (p50/p95/p99)."""

from __future__ import annotations

import numpy as np

from evimae_stream.buffer import StreamBuffer


def stream_health(buffer: StreamBuffer, missing: dict[str, str]) -> dict[str, dict]:
    """Per configured stream: link up, effective rate, estimated drops, why it is missing from
    this window (None when used)."""
    out = {}
    for name, c in buffer.health().items():
        out[name] = {
            "up": bool(c.up),
            "rate_hz": round(float(c.effective_rate_hz), 1),
            "drops": int(c.drops),
            "missing": missing.get(name),
        }
    return out


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
