"""Fixed-size per-stream rings and their health counters.

Each sensor stream has one preallocated ring (DESIGN §3): a single writer (the driver thread)
pushes, any number of readers take snapshots. The writer holds the ring's lock only to store
one sample; a reader holds it only to locate and copy a time range, so a snapshot is always
sorted and self-consistent and is never changed by later pushes. Rings never grow.

Timestamps in a ring are on the host timeline after the stream's time map
(:mod:`evimae_stream.time_map`): strictly increasing. Out-of-order samples (device time not after
the newest) are DROPPED and counted, so the ring stays sorted and the outcome does not depend on
thread timing. Samples with values no body-worn IMU can report (non-finite, or beyond
:data:`ACC_LIMIT_G` / :data:`GYRO_LIMIT_DPS`: a wrong ``scale=`` or corrupt data) are dropped and
counted too, so they never reach the model.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.health import RATE_WINDOW_S, StreamCounters, rate_hz
from evimae_stream.time_map import DeviceTimeMap, IndexTimeMap, TimeMap
from evimae_stream.types import CAMERA

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: the physical range of an IMU's channels: acceleration in g (high-g parts reach ±400 g) and
#: angular rate in deg/s (±4000 deg/s parts); anything beyond is a fault, not motion
ACC_LIMIT_G = 400.0
GYRO_LIMIT_DPS = 5000.0


@dataclass(frozen=True)
class ImuSnapshot:
    """Copies of a ring's samples in a time range: ``t_ns`` (N,) int64 host timeline,
    ``arrival_ns`` (N,) int64 raw arrival, ``values`` (N, C) float32."""

    t_ns: np.ndarray
    arrival_ns: np.ndarray
    values: np.ndarray


class Ring:
    """Shared part of the rings: preallocated timestamps, lock, link state, counters."""

    kind = ""

    def __init__(self, name: str, capacity: int, nominal_rate_hz: float | None, clock: Clock):
        if capacity < 2:
            raise ValueError(f"ring {name!r}: capacity must be >= 2, got {capacity}")
        if nominal_rate_hz is not None and not nominal_rate_hz > 0:
            raise ValueError(f"ring {name!r}: nominal rate must be > 0, got {nominal_rate_hz}")
        self.name = name
        self.capacity = int(capacity)
        self.nominal_rate_hz = nominal_rate_hz
        self.clock = clock
        self._lock = threading.Lock()
        self._t = np.zeros(self.capacity, np.int64)
        self._arrival = np.zeros(self.capacity, np.int64)
        self._n = 0  # samples ever stored
        self._first_ns: int | None = None
        self._up = False
        self._down_reason: str | None = "no data yet"
        self.drops = 0
        self.out_of_order = 0
        self.bad_values = 0

    # -- link state (driver thread) -------------------------------------------------------------

    def mark_down(self, reason: str) -> None:
        """The link is lost; the stream counts as missing until :meth:`mark_up`."""
        self._down_reason = str(reason) or "down"
        self._up = False
        log.info("stream %s down: %s", self.name, self._down_reason)

    def mark_up(self) -> None:
        """The link is (back) up."""
        self._up = True
        self._down_reason = None

    @property
    def up(self) -> bool:
        """Whether the stream's link is up."""
        return self._up

    @property
    def down_reason(self) -> str | None:
        """Why the stream is down (None when up)."""
        return self._down_reason

    # -- reading --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    @property
    def newest_ns(self) -> int | None:
        """Timestamp of the newest sample, or None before the first."""
        with self._lock:
            return None if self._n == 0 else int(self._t[(self._n - 1) % self.capacity])

    def _store_time(self, t_ns: int, arrival_ns: int) -> int:
        """Write timestamps into the next slot (lock held by the caller); returns the slot."""
        slot = self._n % self.capacity
        self._t[slot] = t_ns
        self._arrival[slot] = arrival_ns
        return slot

    def _count_gap(self, t_ns: int) -> None:
        if self._n and self.nominal_rate_hz:
            prev = int(self._t[(self._n - 1) % self.capacity])
            periods = (t_ns - prev) * self.nominal_rate_hz / _NS
            if periods > 1.5:
                self.drops += round(periods) - 1
        if self._first_ns is None:
            self._first_ns = t_ns
            if self._down_reason == "no data yet":
                self.mark_up()

    def _range_indices(self, t0_ns: int | None, t1_ns: int | None, margin: int) -> np.ndarray:
        """Physical slots (logical order) of samples with t in [t0, t1], widened by ``margin``
        samples on each side where they exist. Lock held by the caller."""
        n, cap = self._n, self.capacity
        count = min(n, cap)
        start = n - count  # logical index of the oldest sample held
        lo, hi = 0, count
        if count and t0_ns is not None:
            lo = self._search(t0_ns, start, count, "left")
        if count and t1_ns is not None:
            hi = self._search(t1_ns, start, count, "right")
        lo = max(0, lo - margin)
        hi = min(count, max(hi, lo) + margin)
        return (start + np.arange(lo, hi)) % cap

    def _search(self, t_ns: int, start: int, count: int, side: str) -> int:
        """searchsorted over the logical (unwrapped) order of the held samples."""
        cap = self.capacity
        p = start % cap
        if p + count <= cap:
            return int(np.searchsorted(self._t[p : p + count], t_ns, side=side))
        older = self._t[p:cap]
        i = int(np.searchsorted(older, t_ns, side=side))
        if i < len(older):
            return i
        return len(older) + int(np.searchsorted(self._t[: count - len(older)], t_ns, side=side))

    def _times_since(self, t0_ns: int) -> tuple[int, int | None]:
        with self._lock:
            idx = self._range_indices(t0_ns, None, 0)
            return len(idx), (int(self._t[idx[0]]) if len(idx) else None)

    def _time_map_stats(self) -> tuple[int, int, float | None, float]:
        return 0, 0, None, 0.0  # clamped, resets, offset ns, drift ppm

    def unavailable(self, now_ns: int, stale_after_s: float | None) -> str | None:
        """Why no window can use this stream at ``now_ns`` (None when one can): down, no data
        yet, or (with ``stale_after_s``) a newest sample older than that: silent, or lagging
        when it arrived recently but maps far behind its arrival."""
        if not self._up:
            return f"down: {self._down_reason}"
        with self._lock:
            if self._n == 0:
                return "no data yet"
            slot = (self._n - 1) % self.capacity
            newest, arrival = int(self._t[slot]), int(self._arrival[slot])
        age = (now_ns - newest) / _NS
        if stale_after_s is None or age <= stale_after_s:
            return None
        held_back = (arrival - newest) / _NS > stale_after_s / 2  # by its time map
        if held_back and (now_ns - arrival) / _NS <= stale_after_s:
            return (
                f"lagging: its newest sample maps {age:.2f} s behind the host clock although "
                "samples arrive (its time map has not caught up)"
            )
        return f"stale: no sample for {age:.2f} s"

    def counters(self, stale_after_s: float | None = None) -> StreamCounters:
        """A consistent-enough snapshot of this stream's health (ints are read atomically);
        ``stale_after_s``: when a stream counts as stale (see :meth:`unavailable`)."""
        now = self.clock()
        newest = self.newest_ns
        start = None if newest is None else newest - round(RATE_WINDOW_S * _NS)
        window = (0, None) if start is None else self._times_since(start)
        clamped, resets, offset_ns, drift = self._time_map_stats()
        return StreamCounters(
            name=self.name,
            kind=self.kind,
            samples=self._n,
            drops=self.drops,
            out_of_order=self.out_of_order,
            clamped=clamped,
            clock_resets=resets,
            bad_values=self.bad_values,
            rate_hz=rate_hz(*window, newest),
            clock_offset_s=None if offset_ns is None else offset_ns / _NS,
            drift_ppm=drift,
            up=self._up,
            down_reason=self._down_reason,
            unavailable=self.unavailable(now, stale_after_s),
            last_sample_age_s=None if newest is None else (now - newest) / _NS,
            newest_ns=newest,
        )


class ImuRing(Ring):
    """The ring of one IMU stream; implements :class:`evimae_stream.sink.ImuSink`.

    ``time_map``: the stream's :class:`~evimae_stream.time_map.TimeMap`. None (default) picks
    at the first push: a :class:`DeviceTimeMap` when the driver passes ``t_dev``, else an
    :class:`IndexTimeMap` at ``nominal_rate_hz``. If the driver later switches between sending and
    not sending ``t_dev``, the ring switches time map kind (logged, counted as a clock reset).
    ``clock`` gives "now" for counters (a :class:`VirtualClock` in replay).
    """

    kind = "imu"

    def __init__(
        self,
        name: str,
        capacity: int,
        channels: int,
        nominal_rate_hz: float,
        time_map: TimeMap | None = None,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        super().__init__(name, capacity, nominal_rate_hz, clock)
        if channels < 1:
            raise ValueError(f"ring {name!r}: channels must be >= 1, got {channels}")
        self.channels = int(channels)
        self._values = np.zeros((self.capacity, self.channels), np.float32)
        acc = min(3, self.channels)
        self._limit = np.array(
            [ACC_LIMIT_G] * acc + [GYRO_LIMIT_DPS] * (self.channels - acc), np.float32
        )
        self._auto = time_map is None
        self.time_map: TimeMap | None = time_map
        self._switches = 0
        self._held: tuple[int, np.ndarray] | None = None  # (arrival, values) the map holds

    def _time_map_for(self, t_dev: float | None) -> TimeMap:
        tm = self.time_map
        if tm is not None:
            if not self._auto or isinstance(tm, DeviceTimeMap) == (t_dev is not None):
                return tm
            self._switches += 1
            log.warning(
                "stream %s: driver %s device time; switching time map (%d switches)",
                self.name,
                "started sending" if t_dev is not None else "stopped sending",
                self._switches,
            )
        new: TimeMap
        if t_dev is not None:
            new = DeviceTimeMap(self.name)
        else:
            new = IndexTimeMap(float(self.nominal_rate_hz or 1.0), self.name)
        if tm is not None and tm.last_ns is not None:
            new.last_ns = tm.last_ns  # keep the timeline strictly increasing across the switch
            new.clamped = tm.clamped
        self.time_map = new
        return new

    def _reject(self, count: int) -> None:
        """Count ``count`` samples outside the physical range; the first one is logged."""
        if count and not self.bad_values:
            log.warning(
                "stream %s: a sample beyond the physical range (|acc| <= %g g, |gyro| <= %g "
                "deg/s) or not finite; such samples are dropped (check the sensor's scale)",
                self.name,
                ACC_LIMIT_G,
                GYRO_LIMIT_DPS,
            )
        self.bad_values += count

    def push(self, t_host_ns: int, values: np.ndarray, t_dev: float | None = None) -> None:
        """Map, check and store one sample (driver thread). Raises InputError when ``values``
        does not have this ring's channel count (a rig configuration error)."""
        v = np.asarray(values, dtype=np.float32)
        if v.shape != (self.channels,):
            raise InputError(
                f"IMU stream {self.name}: sample has shape {v.shape}, expected "
                f"({self.channels},) channels; check the rig's channel map for this sensor"
            )
        if not (np.abs(v) <= self._limit).all():  # also False for NaN
            self._reject(1)
            return
        for t, host, row in self._map(int(t_host_ns), v, t_dev):
            self._count_gap(t)
            with self._lock:
                slot = self._store_time(t, host)
                self._values[slot] = row
                self._n += 1

    def _map(
        self, t_host_ns: int, values: np.ndarray, t_dev: float | None
    ) -> list[tuple[int, int, np.ndarray]]:
        """(timestamp, arrival, values) of the samples to store now, in order: none (out of
        order, or held by the time map), this one, or the one the time map held at the previous
        push and this one."""
        tm = self._time_map_for(t_dev)
        t = tm.map(t_host_ns, t_dev)
        out = []
        held, self._held = self._held, None
        if held is not None:
            if tm.released is not None:
                out.append((tm.released, held[0], held[1]))
            else:
                self.out_of_order += 1
        if t is not None:
            out.append((t, t_host_ns, values))
        elif tm.holding:
            self._held = (t_host_ns, values.copy())
        else:
            self.out_of_order += 1
        return out

    def push_block(
        self,
        t_host_ns: np.ndarray,
        values: np.ndarray,
        t_dev: np.ndarray | None = None,
    ) -> int:
        """Map, check and store a block of samples in order: the same result (timestamps,
        values, counters, time map) as :meth:`push` for every row, with one call and one
        vectorised store instead of one Python call per sample (replays at max speed).

        ``t_host_ns`` (N,) ints, ``values`` (N, channels), ``t_dev`` (N,) seconds with NaN for
        "no device time", or None. Returns how many samples were stored. Raises InputError on a
        shape mismatch, like :meth:`push`.
        """
        v = np.asarray(values, dtype=np.float32)
        hosts = np.asarray(t_host_ns, dtype=np.int64).reshape(-1)
        if v.ndim != 2 or v.shape[1] != self.channels or len(v) != len(hosts):
            raise InputError(
                f"IMU stream {self.name}: block of shape {v.shape} with {len(hosts)} stamps, "
                f"expected ({len(hosts)}, {self.channels}); check the rig's channel map"
            )
        devs = None if t_dev is None else np.asarray(t_dev, dtype=np.float64).reshape(-1)
        finite = (np.abs(v) <= self._limit).all(axis=1)
        self._reject(int(len(v) - np.count_nonzero(finite)))
        stored: list[tuple[int, int, np.ndarray]] = []
        for i in np.flatnonzero(finite).tolist():
            dev = None if devs is None or np.isnan(devs[i]) else float(devs[i])
            stored += self._map(int(hosts[i]), v[i], dev)
        k = len(stored)
        if k == 0:
            return 0
        times = [t for t, _, _ in stored]
        t_arr = np.asarray(times, dtype=np.int64)
        if self.nominal_rate_hz:
            prev = [int(self._t[(self._n - 1) % self.capacity])] if self._n else []
            chain = np.asarray(prev + times, dtype=np.int64)
            periods = np.diff(chain) * self.nominal_rate_hz / _NS
            gaps = periods[periods > 1.5]
            self.drops += int(sum(round(float(p)) - 1 for p in gaps))
        if self._first_ns is None:
            self._first_ns = times[0]
            if self._down_reason == "no data yet":
                self.mark_up()
        keep = slice(max(0, k - self.capacity), k)  # older rows would be overwritten anyway
        with self._lock:
            slots = (self._n + np.arange(k)[keep]) % self.capacity
            self._t[slots] = t_arr[keep]
            self._arrival[slots] = np.asarray([a for _, a, _ in stored], np.int64)[keep]
            self._values[slots] = np.asarray([row for _, _, row in stored], np.float32)[keep]
            self._n += k
        return k

    def snapshot(
        self, t0_ns: int | None = None, t1_ns: int | None = None, margin: int = 0
    ) -> ImuSnapshot:
        """Copies of the samples with t in [t0, t1] (None: unbounded), plus ``margin`` samples
        on each side where held."""
        with self._lock:
            idx = self._range_indices(t0_ns, t1_ns, margin)
            return ImuSnapshot(self._t[idx], self._arrival[idx], self._values[idx])

    def latest(self, count: int) -> ImuSnapshot:
        """Copies of the newest ``count`` samples (fewer if the ring holds fewer)."""
        with self._lock:
            held = min(self._n, self.capacity)
            k = min(count, held)
            idx = (self._n - k + np.arange(k)) % self.capacity
            return ImuSnapshot(self._t[idx], self._arrival[idx], self._values[idx])

    def _time_map_stats(self) -> tuple[int, int, float | None, float]:
        tm = self.time_map
        if tm is None:
            return 0, self._switches, None, 0.0
        return tm.clamped, tm.resets + self._switches, tm.offset_ns, tm.drift_ppm


class FrameRing(Ring):
    """The ring of the camera's last ``capacity`` frames; implements
    :class:`evimae_stream.sink.FrameSink`.

    Frames are stored BY REFERENCE (no copy per frame): a driver must hand over a new array for
    every frame and never write into one it has pushed (OpenCV's ``read()`` without an output
    argument does exactly that). Timestamps are the host arrival stamps (taken right after
    ``grab()``); a frame not after the newest is dropped and counted as out of order.
    ``nominal_fps`` (optional) is used to estimate dropped frames and the nearest-frame tolerance.
    """

    kind = "camera"

    def __init__(
        self,
        name: str = CAMERA,
        capacity: int = 128,
        nominal_fps: float | None = None,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        super().__init__(name, capacity, nominal_fps, clock)
        self._frames: list[np.ndarray | None] = [None] * self.capacity

    def push_frame(self, t_host_ns: int, frame: np.ndarray) -> None:
        """Store one RGB frame (driver thread)."""
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(
                f"camera stream {self.name}: frame has shape {frame.shape}, expected (H, W, 3) RGB"
            )
        t = int(t_host_ns)
        if self._n and t <= int(self._t[(self._n - 1) % self.capacity]):
            self.out_of_order += 1
            return
        self._count_gap(t)
        with self._lock:
            slot = self._store_time(t, t)
            self._frames[slot] = frame
            self._n += 1

    def snapshot(
        self, t0_ns: int | None = None, t1_ns: int | None = None, margin: int = 0
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(timestamps (N,) int64, frames) with t in [t0, t1], plus ``margin`` on each side."""
        with self._lock:
            idx = self._range_indices(t0_ns, t1_ns, margin)
            frames = [self._frames[i] for i in idx.tolist()]
            return self._t[idx], frames  # type: ignore[return-value]

    def latest(self) -> tuple[int, np.ndarray] | None:
        """(timestamp, frame) of the newest frame, or None."""
        with self._lock:
            if self._n == 0:
                return None
            slot = (self._n - 1) % self.capacity
            return int(self._t[slot]), self._frames[slot]  # type: ignore[return-value]
