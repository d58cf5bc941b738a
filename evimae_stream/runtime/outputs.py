"""Where a run's predictions go (:class:`Outputs`): latency stamped at emission, handed to every
sink, and the statistics of the exit summary kept.

Latency is in wall milliseconds: ``time_scale`` is host-clock ns per wall ns (a paced replay at
N×), or ``speed`` reads it at every emission (the monitor's replay, whose speed the user
changes).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from evimae_stream.runtime.backends import Backend
from evimae_stream.runtime.events import Gap, Prediction
from evimae_stream.runtime.percentiles import Percentiles
from evimae_stream.runtime.recognizer import STAGES

log = logging.getLogger(__name__)


class Outputs:
    """Fans predictions out to the sinks and keeps the statistics of the summary."""

    def __init__(
        self,
        sinks: list,
        timings: bool,
        truth: Callable[[Prediction], str | None] | None = None,
        time_scale: float = 1.0,
        speed: Callable[[], float] | None = None,
    ) -> None:
        self.sinks = sinks
        self.timings = timings
        self.truth = truth
        self.predictions: list[Prediction] = []
        self.latency = Percentiles()
        self.stages = {s: Percentiles() for s in STAGES}
        self.modes: Counter = Counter()
        self.skipped = 0
        self.gaps: list[Gap] = []
        self.time_scale = time_scale  # host-clock ns per wall ns (paced replay at N×)
        self.speed = speed

    def emit(self, pred: Prediction, now_ns: int) -> None:
        """Stamp latency at ``now_ns`` (emission time) and hand to every sink."""
        if self.speed is not None:
            self.time_scale = self.speed()
        if pred.newest_ns is not None and pred.label is not None:
            pred.latency_ms = (now_ns - pred.newest_ns) / 1e6 / self.time_scale
            work = sum(pred.stages_ms.get(s, 0.0) for s in STAGES[1:])
            if self.timings:
                pred.stages_ms["wait"] = max(0.0, pred.latency_ms - work)
            self.latency.add(pred.latency_ms)
        for s in STAGES:
            if s in pred.stages_ms:
                self.stages[s].add(pred.stages_ms[s])
        self.modes[pred.mode or "none"] += 1
        if self.timings:
            pred.emitted_unix = round(time.time(), 6)
        if self.truth is not None:
            pred.truth = self.truth(pred)
        self.predictions.append(_light(pred))
        for sink in self.sinks:
            sink.emit(pred)

    def gap(self, gap: Gap) -> None:
        """A stretch without data that the replay jumped over: one warning line, and the event
        to every sink that records events (``gap(gap)``)."""
        self.gaps.append(gap)
        log.warning("%s", gap.text())
        for sink in self.sinks:
            record = getattr(sink, "gap", None)
            if record is not None:
                record(gap)

    def summary(self, backend: Backend | None, streams: dict, threads: dict | None = None) -> dict:
        """The run's summary; ``threads``: torch's thread count and why (the recogniser's)."""
        n = len(self.predictions)
        predicted = sum(p.label is not None for p in self.predictions)
        return {
            "windows": n,
            "predicted": predicted,
            "no_prediction": n - predicted,
            "skipped": self.skipped,
            "gaps": [g.to_dict() for g in self.gaps],
            "modes": dict(sorted(self.modes.items())),
            "backend": backend.label if backend else "none (no window had data)",
            "backend_note": backend.note if backend else "",
            "backend_check": backend.check.summary() if backend and backend.check else None,
            "threads": threads,
            "latency_ms": self.latency.summary(),
            "stages_ms": {s: p.summary() for s, p in self.stages.items() if p.count},
            "timings": self.timings,
            "streams": streams,
        }


def _light(pred: Prediction) -> Prediction:
    """The prediction without its health detail (kept for evaluation, memory stays small)."""
    return Prediction(
        index=pred.index,
        tick_ns=pred.tick_ns,
        origin_ns=pred.origin_ns,
        t_ref_ns=pred.t_ref_ns,
        label=pred.label,
        score=pred.score,
        probs=pred.probs,
        mode=pred.mode,
        truth=pred.truth,
    )
