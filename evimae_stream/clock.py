"""Clocks: sources of "now" on the host timeline, in nanoseconds.

The live system has one host clock, ``time.monotonic_ns()`` (DESIGN §3): every sample is
stamped with it once, on arrival. Replays at max speed and tests run on a :class:`VirtualClock`
instead, which moves only when told to, so their results do not depend on thread timing.

Mapping a sensor's own time onto the host timeline is a different job
(:mod:`evimae_stream.time_map`).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

_NS = 1_000_000_000


class Clock(Protocol):
    """A source of "now" on the host timeline, in nanoseconds."""

    def now_ns(self) -> int:
        """The current time in integer nanoseconds."""
        ...


class HostClock:
    """The one host clock of the live system: ``time.monotonic_ns()``."""

    def now_ns(self) -> int:
        """Monotonic host time in nanoseconds."""
        return time.monotonic_ns()


class VirtualClock:
    """A clock that moves only when told to (replay at max speed, tests): deterministic results.

    Thread-safe: a replay thread advances it while the scheduler and the rings read it.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._lock = threading.Lock()
        self._now = int(start_ns)

    def now_ns(self) -> int:
        """The current virtual time in nanoseconds."""
        with self._lock:
            return self._now

    def set_ns(self, t_ns: int) -> None:
        """Move the clock to ``t_ns``; it never goes backwards (ValueError if asked to)."""
        with self._lock:
            if t_ns < self._now:
                raise ValueError(f"virtual clock cannot go back from {self._now} to {t_ns} ns")
            self._now = int(t_ns)

    def advance_ns(self, dt_ns: int) -> int:
        """Move the clock forward by ``dt_ns`` (>= 0) and return the new time."""
        if dt_ns < 0:
            raise ValueError(f"virtual clock cannot advance by a negative step ({dt_ns} ns)")
        with self._lock:
            self._now += int(dt_ns)
            return self._now

    def advance_s(self, dt_s: float) -> int:
        """Move the clock forward by ``dt_s`` seconds and return the new time."""
        return self.advance_ns(round(dt_s * _NS))
