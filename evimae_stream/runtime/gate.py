"""Tick gates: the sinks live drivers push into, released into the rings one tick at a time.

A live driver hands a sample over the moment it is stamped; the gate queues it and
:meth:`Gate.release` moves every queued sample stamped at or before the tick time into its ring
(and to the recorder, when recording). So the rings at tick ``T`` hold exactly the samples that
arrived by ``T`` — what a replay's ``advance_to`` pushes for the same ``T`` — and a recorded run
replays to the same windows. Link state (``mark_down``/``mark_up``) passes straight through.
Queues are bounded: a gate never holds more than ``max_pending`` samples (the oldest are dropped
and counted, which only happens when the scheduler has stopped).
"""

from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np

from evimae_stream.rings import FrameRing, ImuRing

#: most samples or frames a gate holds between releases
MAX_PENDING = 20_000


class _Gate:
    def __init__(self, name: str, ring, recorder=None, max_pending: int = MAX_PENDING) -> None:
        self.name = name
        self.ring = ring
        self.recorder = recorder
        self._q: deque = deque()
        self._lock = threading.Lock()
        self.max_pending = max_pending
        self.overflow = 0

    def _put(self, item) -> None:
        with self._lock:
            if len(self._q) >= self.max_pending:
                self._q.popleft()
                self.overflow += 1
            self._q.append(item)

    def _take(self, t_ns: int | None) -> list:
        with self._lock:
            out = []
            while self._q and (t_ns is None or self._q[0][0] <= t_ns):
                out.append(self._q.popleft())
            return out

    def mark_down(self, reason: str) -> None:
        self.ring.mark_down(reason)

    def mark_up(self) -> None:
        self.ring.mark_up()


class ImuGate(_Gate):
    """An :class:`~evimae_stream.sink.ImuSink` in front of an :class:`ImuRing`. The ring gets
    the acceleration columns it holds; the recorder gets every value the sensor sent."""

    def push(self, t_host_ns: int, values: np.ndarray, t_dev: float | None = None) -> None:
        self._put((int(t_host_ns), np.array(values, dtype=np.float32), t_dev))

    def push_block(
        self, t_host_ns: np.ndarray, values: np.ndarray, t_dev: np.ndarray | None = None
    ) -> None:
        """Queue a block of samples in time order (``t_host_ns`` (N,), ``values`` (N, C),
        ``t_dev`` (N,) seconds, NaN = none, or None): one queue entry instead of N, released
        like N :meth:`push` calls (a block straddling a tick is split at it)."""
        stamps = np.array(t_host_ns, dtype=np.int64).reshape(-1)
        if len(stamps) == 0:
            return
        vals = np.array(values, dtype=np.float32).reshape(len(stamps), -1)
        devs = None if t_dev is None else np.array(t_dev, dtype=np.float64).reshape(-1)
        self._put((int(stamps[0]), _Block(stamps, vals, devs)))

    def _take(self, t_ns: int | None) -> list:
        with self._lock:
            out = []
            while self._q and (t_ns is None or self._q[0][0] <= t_ns):
                item = self._q.popleft()
                block = item[1]
                if isinstance(block, _Block) and t_ns is not None and block.t[-1] > t_ns:
                    head, rest = block.split(t_ns)
                    self._q.appendleft((int(rest.t[0]), rest))
                    item = (item[0], head)
                out.append(item)
            return out

    def release(self, t_ns: int | None) -> int:
        """Move samples stamped ≤ ``t_ns`` (None: all) into the ring; returns how many."""
        items = self._take(t_ns)
        ring: ImuRing = self.ring
        n = 0
        for item in items:
            t, values = item[0], item[1]
            if isinstance(values, _Block):
                n += len(values.t)
                if self.recorder is not None:
                    for i in range(len(values.t)):
                        dev = values.dev_at(i)
                        self.recorder.add_imu(self.name, int(values.t[i]), values.values[i], dev)
                ring.push_block(values.t, values.values[:, : ring.channels], values.t_dev)
                continue
            t_dev = item[2]
            n += 1
            if self.recorder is not None:
                self.recorder.add_imu(self.name, t, values, t_dev)
            ring.push(t, values[: ring.channels], t_dev)
        return n


class _Block:
    """A queued block of IMU samples (see :meth:`ImuGate.push_block`)."""

    __slots__ = ("t", "t_dev", "values")

    def __init__(self, t: np.ndarray, values: np.ndarray, t_dev: np.ndarray | None) -> None:
        self.t = t
        self.values = values
        self.t_dev = t_dev

    def dev_at(self, i: int) -> float | None:
        if self.t_dev is None or np.isnan(self.t_dev[i]):
            return None
        return float(self.t_dev[i])

    def split(self, t_ns: int) -> tuple[_Block, _Block]:
        """(samples stamped ≤ ``t_ns``, the rest)."""
        k = int(np.searchsorted(self.t, t_ns, side="right"))
        dev = self.t_dev
        return (
            _Block(self.t[:k], self.values[:k], None if dev is None else dev[:k]),
            _Block(self.t[k:], self.values[k:], None if dev is None else dev[k:]),
        )


class FrameGate(_Gate):
    """A :class:`~evimae_stream.sink.FrameSink` in front of the camera :class:`FrameRing`.

    With ``resize_to`` every frame is resized to the model's ``S×S`` (``cv2.INTER_LINEAR``, the
    very operation the video preprocessing applies, so the numbers are the same) before it enters
    the ring: the ring then holds small frames whatever the camera sends (1080p: 6 MB each).
    The recorder still gets the frame as grabbed.
    """

    def __init__(self, name, ring, recorder=None, resize_to: int | None = None, **kw) -> None:
        super().__init__(name, ring, recorder, **kw)
        self.resize_to = resize_to

    def push_frame(self, t_host_ns: int, frame: np.ndarray) -> None:
        self._put((int(t_host_ns), frame))

    def release(self, t_ns: int | None) -> int:
        """Move frames stamped ≤ ``t_ns`` (None: all) into the ring; returns how many."""
        items = self._take(t_ns)
        ring: FrameRing = self.ring
        for t, frame in items:
            if self.recorder is not None:
                self.recorder.add_frame(t, frame)
            if self.resize_to and frame.shape[:2] != (self.resize_to, self.resize_to):
                size = (self.resize_to, self.resize_to)
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            ring.push_frame(t, frame)
        return len(items)


class Gates:
    """All gates of a rig; :meth:`release` is called by the scheduler at every tick."""

    def __init__(self, imu: dict[str, ImuGate], camera: FrameGate | None) -> None:
        self.imu = imu
        self.camera = camera

    def release(self, t_ns: int | None) -> int:
        n = sum(g.release(t_ns) for g in self.imu.values())
        if self.camera is not None:
            n += self.camera.release(t_ns)
        return n
