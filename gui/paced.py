"""Paced replays for the monitor: a recorded session played on its own host clock, which the
controls pause, speed up and seek.

The monitor plays a session at N× on a :class:`~evimae_stream.clock.ScaledClock`: host time
that runs N times faster than the wall clock and stands still while the replay is paused, stopped
or over. A :class:`PacedReplay` stamps the sample recorded at session time ``t`` at
``origin + t`` on that clock, and pause, resume, stop, start and speed changes leave that mapping
alone. So everything
downstream sees the data at its recorded rate and on the session's own time axis, whatever the
user does: the rings and their health rates, a recording made from the window, and the runtime's
windows, whose ``t_s`` is then session time (the timeline's predicted lane lines up with the
ground truth and the "now" line), and a pause leaves no hole in the data.

Only a seek changes the mapping (the clock never runs backwards, so the session position jumps
while host time goes on). :meth:`PacedReplay.seek` tells its ``on_seek`` listeners, under the
replay's lock, before the first sample after the seek is pushed: the runtime-backed source
(:mod:`gui.runtime_source`) starts its windows over on fresh rings there, so no window mixes data
from before and after a seek.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from drivers.base import EndOfStream
from drivers.replay import ReplayDriver
from evimae_stream.clock import ScaledClock

log = logging.getLogger(__name__)


class PacedReplay(ReplayDriver):
    """A replay on a :class:`~evimae_stream.clock.ScaledClock`: the speed control changes the
    clock, pause and stop stop it, and samples are stamped at ``origin + session time`` until a
    seek (see the module doc). ``on_seek``: callbacks ``fn(t_s)`` run under the replay's lock
    after a seek to session time ``t_s``, before any later sample is pushed;
    :meth:`session_origin_ns` is then the new origin."""

    #: recorded seconds per host second: the clock, not the stamps, carries the speed
    time_scale = 1.0

    def __init__(self, session, imu_sinks, frame_sink=None, clock: ScaledClock | None = None):
        clock = clock if clock is not None else ScaledClock(paused=True)
        clock.pause()  # the mapping set below holds from the first start on
        super().__init__(session, imu_sinks, frame_sink, speed=1.0, clock=clock)
        self.session_clock = clock
        self.on_seek: list[Callable[[float], None]] = []

    @property
    def speed(self) -> float:
        return self.session_clock.speed

    def session_origin_ns(self) -> int:
        """Host time of session time 0 under the current mapping."""
        return self.source.stamp_ns(0.0)

    def set_speed(self, speed: float) -> None:
        """Change the pace of the replay and of everything on its clock."""
        self.session_clock.set_speed(speed)

    def pause(self) -> None:
        """Hold the replay and its clock where they are."""
        with self._control:
            self._paused.set()
            self.session_clock.pause()

    def resume(self) -> None:
        """Continue from where it was held (the session keeps its place on the clock)."""
        with self._control:
            self._paused.clear()
            if self.running:
                self.session_clock.resume()

    def start(self) -> None:
        """Stream from the current position; the clock runs unless the user paused."""
        with self._control:
            if not self._paused.is_set():
                self.session_clock.resume()
        super().start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop streaming; the clock stands still until the next start."""
        super().stop(timeout_s)
        self.session_clock.pause()

    def seek(self, t_s: float) -> None:
        """Jump to session time ``t_s``: host time goes on, so the mapping changes here, and
        the ``on_seek`` listeners learn it before any later sample is pushed."""
        with self._control:
            self.source.seek(t_s, self.clock())
            position = self.source.position_s
            for listener in self.on_seek:
                listener(position)
        log.debug("replay seek to %.2f s", position)

    def _read(self) -> bool:
        try:
            return super()._read()
        except EndOfStream:
            self.session_clock.pause()  # the end of the session: time stops with it
            raise
