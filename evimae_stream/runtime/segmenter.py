"""``--segments``: action segments while the run goes, from the interval head.

Every window the recogniser infers adds its embeddings to a :class:`FeatureRing` of fixed
memory (the last ``keep_s`` seconds; by default one context). After each window — every stride
— the interval head runs once over the last ``context_s`` seconds (one context ending at the
window's end, its dense queries, boundaries refined by its windows, per-class NMS), and the
segment that reaches the present (the best-scoring detection whose end is within ``reach_s`` of
now, scoring the head's ``open_score`` or more) is the *open* segment:

- while it goes on (same label), a ``segment`` event with ``open: true`` and its refined start
  and the current end goes out at every stride;
- when the label changes or no detection reaches the present any more, the segment is closed:
  one event with ``open: false`` and its final end (the last window it was seen at); a new one
  may open in the same stride;
- at the end of the run the open segment is closed.

Each event has ``latency_ms``: the prediction's latency (emission − newest sample of its
window) plus the interval head's forward (``interval_ms``); a segment's end is thus known one
window latency plus one head forward after its last window, and a change of action shows up
within about one stride after the model sees it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evimae_stream.interval_head import IntervalHead, IntervalMeta, context_inputs, load_interval
from evimae_stream.runtime.features import EmbeddingBackend, FeatureRecorder, FeatureRing

#: segment events and head timings a run keeps (the newest)
EVENTS_KEPT = 2000


@dataclass
class SegmentEvent:
    """One ``segment`` event (JSONL schema in :mod:`evimae_stream.runtime.events`)."""

    id: int
    label: str
    start_s: float
    end_s: float
    score: float
    open: bool
    t_s: float
    latency_ms: float | None
    interval_ms: float

    def to_dict(self, timings: bool = False, truth: bool = False) -> dict:
        del truth
        d = {
            "type": "segment", "id": self.id, "label": self.label,
            "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
            "score": round(self.score, 4), "open": self.open, "t_s": round(self.t_s, 6),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
        }  # fmt: skip
        if timings:
            d["interval_ms"] = round(self.interval_ms, 3)
        return d


class Segmenter:
    """Runs the interval head every stride over the feature ring (see the module doc);
    ``recorder`` is the sink to put among the run's sinks, ``writers`` receive every event."""

    def __init__(
        self, head: IntervalHead, backend: EmbeddingBackend, window_s: float,
        keep_s: float | None = None, open_score: float | None = None,
        writers: list[Callable[[SegmentEvent], None]] | None = None,
    ) -> None:  # fmt: skip
        meta = head.meta
        self.head = head
        keep = max(keep_s or 0.0, meta.context_s)
        self.ring = FeatureRing(int(np.ceil(keep / meta.stride_s)) + 4)
        self.recorder = FeatureRecorder(backend, self.ring, window_s, self.on_window)
        self.open_score = meta.open_score if open_score is None else open_score
        self.reach_s = 2 * meta.stride_s
        self.writers = list(writers or [])
        #: the newest events and head times (bounded: a live run may go on for hours)
        self.events: deque[SegmentEvent] = deque(maxlen=EVENTS_KEPT)
        self.interval_ms: deque[float] = deque(maxlen=EVENTS_KEPT)
        self.closed_count = 0
        self._current: SegmentEvent | None = None
        self._next_id = 1
        self._floor_s = -np.inf  # a new segment starts after the last closed one
        self._last_now: float | None = None

    def on_window(self, pred) -> None:
        """After each window: the head over the last context, then open/update/close."""
        c = self.head.meta.context_s
        now = pred.t_ref_s if pred.t_ref_s is not None else pred.t_s
        if self._last_now is not None and now < self._last_now:  # a replay seeked back
            self._restart(now, pred)
        self._last_now = now
        t0 = time.perf_counter()
        seq = self.ring.sequence(since_s=now - c)
        ctx = context_inputs(seq, now - c, self.head.meta)
        dets = self.head.suppress(self.head.detect_context(ctx, seq))
        ms = (time.perf_counter() - t0) * 1e3
        self.interval_ms.append(ms)
        latency = None if pred.latency_ms is None else pred.latency_ms + ms
        live = [d for d in dets if d.end_s >= now - self.reach_s and d.score >= self.open_score]
        best = max(live, key=lambda d: d.score) if live else None
        cur = self._current
        if cur is not None and (best is None or best.label != cur.label):
            self._close(cur, pred.t_s, latency, ms)
            cur = None
        if best is None:
            return
        start = max(best.start_s, self._floor_s)
        if cur is None:
            cur = SegmentEvent(self._next_id, best.label, start, now, best.score, True,
                               pred.t_s, latency, ms)  # fmt: skip
            self._next_id += 1
        else:
            cur = SegmentEvent(cur.id, cur.label, min(cur.start_s, start), now,
                               max(cur.score, best.score), True, pred.t_s, latency, ms)  # fmt: skip
        self._current = cur
        self._write(cur)

    def _close(self, cur: SegmentEvent, t_s: float, latency, ms: float) -> None:
        done = SegmentEvent(cur.id, cur.label, cur.start_s, cur.end_s, cur.score, False, t_s,
                            latency, ms)  # fmt: skip
        self._floor_s = done.end_s
        self._current = None
        self.closed_count += 1
        self._write(done)

    def _restart(self, now: float, pred) -> None:
        """Time went back (the monitor's seek): the open segment closes and the ring starts
        over from the window just added."""
        del now, pred
        self.finish()
        self.ring.keep_newest()
        self._floor_s = -np.inf

    def finish(self) -> None:
        """Close the open segment (the run ended)."""
        if self._current is not None:
            cur = self._current
            self._close(cur, cur.t_s, cur.latency_ms, cur.interval_ms)

    def _write(self, event: SegmentEvent) -> None:
        self.events.append(event)
        for w in self.writers:
            w(event)

    def closed(self) -> list[SegmentEvent]:
        """The closed segments among the newest events."""
        return [e for e in self.events if not e.open]

    def summary(self) -> dict:
        """Segment count, the head's forward time (p50/p95 ms over the newest windows) and the
        feature ring's bytes, for the run's summary."""
        ms = np.asarray(self.interval_ms, dtype=np.float64)
        pct = (lambda q: round(float(np.percentile(ms, q)), 3)) if len(ms) else (lambda q: None)
        return {
            "segments": self.closed_count,
            "interval_ms_p50": pct(50),
            "interval_ms_p95": pct(95),
            "feature_ring_bytes": self.ring.nbytes,
        }


def segmenter_for(model_dir, loaded, meta, keep_s: float | None = None):
    """(segmenter, its embedding backend) for the artifact at ``model_dir`` (``meta``: its
    :class:`~evimae_stream.artifact.ModelMeta`, which has an interval section)."""
    head = load_interval(model_dir, IntervalMeta(**meta.interval))
    backend = EmbeddingBackend(loaded.model)
    return Segmenter(head, backend, loaded.spec.window_s, keep_s=keep_s), backend
