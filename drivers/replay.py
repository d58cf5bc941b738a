"""Replay paced against the host clock: a :class:`~evimae_stream.sessions.playback.ReplaySource`
played at 1×, N× in its own thread, with pause / resume / seek / speed for the GUI.
"""

from __future__ import annotations

import logging
import threading
import time

from drivers.base import Driver, EndOfStream
from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.sessions.base import Session
from evimae_stream.sessions.playback import ReplaySource
from evimae_stream.sink import FrameSink, ImuSink

log = logging.getLogger(__name__)

#: how long the paced loop sleeps at most between checks (s)
TICK_S = 0.01


class ReplayDriver(Driver):
    """A :class:`ReplaySource` paced against a clock at ``speed``× real time, in its own thread."""

    live = False  # a recording: its device times belong to another run's host clock

    def __init__(
        self,
        session: Session,
        imu_sinks: dict[str, ImuSink],
        frame_sink: FrameSink | None = None,
        speed: float = 1.0,
        clock: Clock = time.monotonic_ns,
        name: str = "replay",
    ) -> None:
        if not speed > 0:
            raise InputError(f"--speed: must be a positive number or 'max', got {speed}")
        source = ReplaySource(session, imu_sinks, frame_sink, t0_ns=clock())
        super().__init__(name, sink=_LinkFanout(source), clock=clock)
        self.source = source
        self.source.reanchor(clock(), speed)
        self._speed = float(speed)
        self._paused = threading.Event()
        self._control = threading.Lock()

    def describe(self) -> str:
        return f"replay of {self.source.session.path}"

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        """Hold the replay where it is."""
        self._paused.set()

    def resume(self) -> None:
        """Continue from where it was paused, stamped from now."""
        with self._control:
            self.source.reanchor(self.clock())
            self._paused.clear()

    def set_speed(self, speed: float) -> None:
        """Change the playback speed from the current position on."""
        with self._control:
            self.source.reanchor(self.clock(), speed)
            self._speed = float(speed)

    def seek(self, t_s: float) -> None:
        """Jump to session time ``t_s``."""
        with self._control:
            self.source.seek(t_s, self.clock())

    def _open(self) -> None:
        if not (self.source.imu_sinks or self.source.frame_sink is not None):
            raise InputError(
                f"{self.source.session.path}: nothing to replay into (no sink for "
                "any of its streams)"
            )

    def _read(self) -> bool:
        if self._paused.is_set():
            time.sleep(TICK_S)
            return False
        with self._control:
            now = self.clock()
            src = self.source
            t_s = src._anchor_s + (now - src._anchor_ns) * src._speed / 1e9
            pushed = src.advance_to(min(t_s, src.duration_s))
            if pushed:
                self._record(pushed, 0)
            if src.done:
                raise EndOfStream("replay finished")
        time.sleep(TICK_S)
        return pushed > 0

    def _close(self) -> None:
        return None


class _LinkFanout:
    """The replay's link state, told to every sink it feeds."""

    def __init__(self, source: ReplaySource) -> None:
        self._sinks = [*source.imu_sinks.values()]
        if source.frame_sink is not None:
            self._sinks.append(source.frame_sink)

    def mark_down(self, reason: str) -> None:
        for sink in self._sinks:
            sink.mark_down(reason)

    def mark_up(self) -> None:
        for sink in self._sinks:
            sink.mark_up()
