"""Live synthetic sources: the simulated wearer streamed in real time, as if from hardware.

``synthetic`` IMU URIs and ``--camera synthetic`` stream one simulated person, so video and IMU
agree: every synthetic source of a seed in a process shares a :class:`SyntheticRig` (one start
time; the motion depends only on the seed). Samples are stamped with the wearer's simulated
arrival times (jitter, drift and drops included), which is what a real link would show. The
script loops when it runs out, so a live demo never ends.

The camera renders only the newest frame that is due (latest frame wins, like a real camera
driver), so a slow renderer drops frames instead of falling behind.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from drivers.base import Driver
from drivers.config import SyntheticImuConfig
from evimae_stream.clock import Clock
from evimae_stream.sink import FrameSink, ImuSink
from evimae_stream.synthetic import ImuSamples, SyntheticWearer

#: script length of a live wearer, in actions (about half an hour before it loops)
LIVE_ACTIONS = 120
#: how much simulated time an IMU read delivers at most (s)
CHUNK_S = 0.05
#: script time an IMU computes per call of the wearer model (s): a call costs ~1.2 ms whether it
#: covers one sample or fifty, and holds the interpreter lock meanwhile
BLOCK_S = 1.0


@dataclass
class SyntheticRig:
    """One simulated person for a process: seed, start time, and wearers per IMU rate."""

    seed: int
    start_ns: int
    _wearers: dict[float, SyntheticWearer]

    _shared: ClassVar[dict[int, SyntheticRig]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, seed: int, clock: Clock = time.monotonic_ns) -> SyntheticRig:
        """The rig of ``seed`` in this process, created (and started) on first use."""
        with cls._lock:
            rig = cls._shared.get(seed)
            if rig is None:
                rig = cls(seed, clock(), {})
                cls._shared[seed] = rig
            return rig

    def wearer(self, rate_hz: float = 50.0) -> SyntheticWearer:
        """The wearer whose IMUs run at ``rate_hz`` (same person and script for every rate)."""
        with self._lock:
            if rate_hz not in self._wearers:
                self._wearers[rate_hz] = SyntheticWearer(
                    seed=self.seed, actions=LIVE_ACTIONS, imu_rate_hz=float(rate_hz)
                )
            return self._wearers[rate_hz]

    def label_at(self, t_host_ns: int) -> str:
        """What the person is doing at host time ``t_host_ns`` (for demos and tests)."""
        w = self.wearer()
        return w.item_at(((t_host_ns - self.start_ns) / 1e9) % w.duration_s)


class _SyntheticDriver(Driver):
    """Streams a simulated source against the clock, looping the script."""

    #: simulated time one read delivers at most (s)
    max_chunk_s = CHUNK_S
    #: simulated time that must pass before a read delivers (s): a BLE link's ~20 ms batches
    min_chunk_s = 0.02

    def __init__(
        self, name: str, sink, rig: SyntheticRig, wearer: SyntheticWearer, clock: Clock
    ) -> None:
        super().__init__(name, sink, clock=clock)
        self.rig = rig
        self.wearer = wearer
        self._t = 0.0  # simulated time delivered so far (s since the rig's start)

    def describe(self) -> str:
        return f"{self.name} (synthetic seed {self.rig.seed})"

    def _open(self) -> None:
        self._t = max(self._t, (self.clock() - self.rig.start_ns) / 1e9)

    def _close(self) -> None:
        return None

    def _due(self) -> tuple[float, float] | None:
        """The next span of simulated time to deliver, once ``min_chunk_s`` of it has passed."""
        now_s = (self.clock() - self.rig.start_ns) / 1e9
        wait_s = self._t + self.min_chunk_s - now_s
        if wait_s > 0:
            # sleep until the span is due: a busy loop here would starve the other threads
            self._stop.wait(min(wait_s, 0.1))
            return None
        t0, t1 = self._t, min(now_s, self._t + self.max_chunk_s)
        self._t = t1
        return t0, t1

    def _pieces(self, t0: float, t1: float):
        """Split ``[t0, t1)`` at script loops: (loop offset s, start, end) in script time."""
        d = self.wearer.duration_s
        k0, k1 = math.floor(t0 / d), math.floor(t1 / d)
        for k in range(k0, k1 + 1):
            lo, hi = max(t0 - k * d, 0.0), min(t1 - k * d, d)
            if hi > lo:
                yield k * d, lo, hi


class SyntheticImuDriver(_SyntheticDriver):
    """One IMU of the simulated wearer (``synthetic?seed=S&rate=R`` at a placement)."""

    def __init__(
        self, config: SyntheticImuConfig, sink: ImuSink, clock: Clock = time.monotonic_ns
    ) -> None:
        rig = SyntheticRig.shared(config.seed, clock)
        super().__init__(
            f"{config.placement}:synthetic", sink, rig, rig.wearer(config.rate_hz), clock
        )
        self.placement = config.placement
        self._blocks: dict[int, ImuSamples] = {}

    def _script_samples(self, lo: float, hi: float) -> ImuSamples:
        """The wearer's samples arriving in ``[lo, hi)`` of the script, cut from blocks of
        :data:`BLOCK_S` computed once each: the wearer's chunked calls equal one call, so these
        are exactly its samples of ``[lo, hi)``, at a fiftieth of the model calls (20 ms
        reads)."""
        parts = []
        for b in range(math.floor(lo / BLOCK_S), math.ceil(hi / BLOCK_S)):
            block = self._blocks.get(b)
            if block is None:
                self._blocks = {k: v for k, v in self._blocks.items() if b - 1 <= k < b}
                block = self.wearer.imu_samples(self.placement, b * BLOCK_S, (b + 1) * BLOCK_S)
                self._blocks[b] = block
            i, j = np.searchsorted(block.t_host_s, (lo, hi), side="left")
            parts.append(ImuSamples(*(field[i:j] for field in block)))
        if len(parts) == 1:
            return parts[0]
        return ImuSamples(*(np.concatenate(f) for f in zip(*parts, strict=True)))

    def _read(self) -> bool:
        due = self._due()
        if due is None:
            return False
        n = 0
        for offset, lo, hi in self._pieces(*due):
            s = self._script_samples(lo, hi)
            for t_host, t_dev, values in zip(s.t_host_s, s.t_dev_s, s.values, strict=True):
                self.sink.push(
                    self.rig.start_ns + round((offset + t_host) * 1e9),
                    values,
                    float(offset + t_dev),
                )
            n += len(s.t_host_s)
            self._record(len(s.t_host_s), s.values.nbytes)
        return n > 0


class SyntheticCameraDriver(_SyntheticDriver):
    """The simulated head camera (``--camera synthetic``); renders the newest due frame."""

    max_chunk_s = math.inf
    min_chunk_s = 1 / 120  # a quarter of a 30 fps frame period: frames arrive ≤ 8 ms late

    def __init__(self, sink: FrameSink, seed: int = 0, clock: Clock = time.monotonic_ns) -> None:
        rig = SyntheticRig.shared(seed, clock)
        super().__init__("camera:synthetic", sink, rig, rig.wearer(), clock)

    def _read(self) -> bool:
        due = self._due()
        if due is None:
            return False
        newest = None
        for offset, lo, hi in self._pieces(*due):
            ft = self.wearer.frame_times(lo, hi)
            if len(ft.t_s):
                newest = (offset + ft.t_host_s[-1], ft.t_s[-1])
                if len(ft.t_s) > 1:
                    self._record(0, 0, dropped=len(ft.t_s) - 1)
        if newest is None:
            return False
        t_host, t_exposure = newest
        frame = self.wearer.render_frame(float(t_exposure))
        self.sink.push_frame(self.rig.start_ns + round(t_host * 1e9), frame)
        self._record(1, frame.nbytes)
        return True
