"""Deterministic playback of a recorded session into sinks: no thread, no link.

:class:`ReplaySource` pushes a session's samples and frames, in time order and on demand
(``advance_to(t)``), into the same sinks live drivers feed. Every sample keeps its recorded
spacing: a sample recorded at session time ``t`` is stamped ``anchor_ns + (t - anchor_s) / speed``
on the host clock, where the anchor moves on seek, speed change and resume, so stamps stay
monotonic whatever the user does. Device timestamps pass through untouched, so the rings fit the
same clock maps they fitted live. The runtime drives it directly at ``--speed max`` with a virtual
clock, which makes a run deterministic; :class:`drivers.replay.ReplayDriver` paces one against
the host clock in its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.sessions.base import Session
from evimae_stream.sink import FrameSink, ImuSink


class ReplaySource:
    """Pushes a session's samples and frames into sinks in time order, on demand.

    ``imu_sinks`` maps placements to sinks; placements the session lacks are simply never fed
    (the buffer reports them missing). ``frame_sink`` None skips video decoding entirely.
    """

    def __init__(
        self,
        session: Session,
        imu_sinks: dict[str, ImuSink],
        frame_sink: FrameSink | None = None,
        t0_ns: int = 0,
    ) -> None:
        self.session = session
        self.imu_sinks = {p: s for p, s in imu_sinks.items() if p in session.imu}
        self.frame_sink = frame_sink if session.has_video else None
        self._lock = threading.Lock()
        self._anchor_ns = int(t0_ns)
        self._anchor_s = 0.0
        self._speed = 1.0
        self._position_s = -np.inf
        self._cursors = dict.fromkeys(self.imu_sinks, 0)
        self._frames: Iterator[tuple[float, np.ndarray]] | None = None
        self._pending: tuple[float, np.ndarray] | None = None
        self._frame_times = session.frame_times() if self.frame_sink is not None else np.empty(0)
        self._frames_done = self.frame_sink is None or len(self._frame_times) == 0
        self._last_s = -np.inf
        self.pushed_samples = 0
        self.pushed_frames = 0

    @property
    def duration_s(self) -> float:
        """Seconds of session time."""
        return self.session.duration_s

    @property
    def position_s(self) -> float:
        """Session time up to which everything has been pushed."""
        return max(self._position_s, 0.0)

    @property
    def last_s(self) -> float:
        """Session time of the latest sample or frame pushed (-inf before the first)."""
        return self._last_s

    def next_s(self) -> float:
        """Session time of the earliest sample or frame not pushed yet (inf when none is left):
        with :attr:`last_s` it tells a max-speed replay where a stretch without data ends."""
        with self._lock:
            times = [
                float(self.session.imu[p].t[c])
                for p, c in self._cursors.items()
                if c < len(self.session.imu[p].t)
            ]
            if not self._frames_done:
                if self._pending is not None:
                    times.append(float(self._pending[0]))
                else:
                    i = int(np.searchsorted(self._frame_times, self._position_s, "right"))
                    if i < len(self._frame_times):
                        times.append(float(self._frame_times[i]))
            return min(times, default=np.inf)

    @property
    def done(self) -> bool:
        """Whether every sample and frame has been pushed."""
        imu_done = all(self._cursors[p] >= len(self.session.imu[p].t) for p in self.imu_sinks)
        return imu_done and self._frames_done

    def stamp_ns(self, t_s: float) -> int:
        """Host timestamp of session time ``t_s`` under the current anchor and speed."""
        return self._anchor_ns + round((t_s - self._anchor_s) * 1e9 / self._speed)

    def reanchor(self, host_ns: int, speed: float | None = None) -> None:
        """From now on, the current position plays at ``host_ns`` (and at ``speed``)."""
        with self._lock:
            self._anchor_ns = int(host_ns)
            self._anchor_s = self.position_s
            if speed is not None:
                if not speed > 0:
                    raise InputError(f"replay speed must be positive, got {speed}")
                self._speed = float(speed)

    def seek(self, t_s: float, host_ns: int) -> None:
        """Continue from session time ``t_s``; the next sample pushed is stamped ``host_ns``."""
        t_s = float(np.clip(t_s, 0.0, self.duration_s))
        with self._lock:
            for p in self._cursors:
                self._cursors[p] = int(np.searchsorted(self.session.imu[p].t, t_s, "left"))
            self._frames = None
            self._pending = None
            if self.frame_sink is not None:
                self._frames_done = bool(
                    np.searchsorted(self._frame_times, t_s) >= len(self._frame_times)
                )
            self._position_s = t_s
            self._last_s = -np.inf
            self._anchor_s = t_s
            self._anchor_ns = int(host_ns)

    def advance_to(self, t_s: float) -> int:
        """Push every sample and frame with session time ≤ ``t_s``; returns how many."""
        with self._lock:
            if t_s <= self._position_s:
                return 0
            pushed = 0
            for placement, sink in self.imu_sinks.items():
                pushed += self._push_imu(placement, sink, t_s)
            if not self._frames_done:
                pushed += self._push_frames(t_s)
            self._position_s = t_s
            return pushed

    def _push_imu(self, placement: str, sink: ImuSink, t_s: float) -> int:
        stream = self.session.imu[placement]
        start = self._cursors[placement]
        end = int(np.searchsorted(stream.t, t_s, "right"))
        t_dev = stream.t_dev
        push_block = getattr(sink, "push_block", None)
        if push_block is not None:
            # one call per block (sinks that take blocks): the same stamps as stamp_ns (the
            # same float64 operations, both round half to even), NaN device times mean "none"
            if end > start:
                rel = (stream.t[start:end].astype(np.float64) - self._anchor_s) * 1e9 / self._speed
                stamps = self._anchor_ns + np.round(rel).astype(np.int64)
                devs = None if t_dev is None else t_dev[start:end]
                push_block(stamps, stream.values[start:end], devs)
        else:
            for i in range(start, end):
                dev = None if t_dev is None or np.isnan(t_dev[i]) else float(t_dev[i])
                sink.push(self.stamp_ns(float(stream.t[i])), stream.values[i], dev)
        if end > start:
            self._last_s = max(self._last_s, float(stream.t[end - 1]))
        self._cursors[placement] = max(end, start)
        self.pushed_samples += max(end - start, 0)
        return max(end - start, 0)

    def _push_frames(self, t_s: float) -> int:
        assert self.frame_sink is not None
        if self._frames is None:
            self._frames = iter(self.session.iter_frames(max(self._position_s, 0.0)))
        pushed = 0
        while True:
            if self._pending is None:
                try:
                    self._pending = next(self._frames)
                except StopIteration:
                    self._frames_done = True
                    return pushed
            t_frame, frame = self._pending
            if t_frame > t_s:
                return pushed
            self.frame_sink.push_frame(self.stamp_ns(t_frame), frame)
            self._last_s = max(self._last_s, float(t_frame))
            self._pending = None
            pushed += 1
            self.pushed_frames += 1
