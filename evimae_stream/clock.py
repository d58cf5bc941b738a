"""Clocks: sources of "now" on the host timeline, in nanoseconds.

A clock is anything called with no argument that returns the current host time as an int of
nanoseconds (:class:`Clock`). The live system has one host clock, ``time.monotonic_ns`` itself
(DESIGN §3): every sample is stamped with it once, on arrival, and drivers, rings, the buffer and
the scheduler all take a clock in that one shape. Two others stand in for it:

- :class:`VirtualClock` moves only when told to: replays at max speed and tests (deterministic
  results), and the tick time the scheduler shows the buffers;
- :class:`ScaledClock` runs ``speed`` times faster than ``time.monotonic_ns`` and can stand
  still: paced replays, whose samples are stamped on the session's own time axis.

Mapping a sensor's own time onto the host timeline is a different job
(:mod:`evimae_stream.time_map`).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from evimae_stream.errors import InputError

_NS = 1_000_000_000


class Clock(Protocol):
    """A source of "now" on the host timeline: ``clock()`` is the current time in integer
    nanoseconds. ``time.monotonic_ns`` is one."""

    def __call__(self) -> int: ...


class VirtualClock:
    """A clock that moves only when told to and never goes backwards.

    Thread-safe: a replay thread or the scheduler moves it while rings and readers call it
    (reading is one attribute load, moving takes a lock).
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._lock = threading.Lock()
        self._now = int(start_ns)

    def __call__(self) -> int:
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


class ScaledClock:
    """Host time running ``speed`` times faster than ``time.monotonic_ns`` while running, still
    while paused; it never runs backwards.

    Paced replays at N×: samples are stamped and windows cut in session time, so the model sees
    the data at its real rate; only the wall clock is compressed. Speed changes, pause and resume
    take effect from the moment they are made, without a jump.
    """

    def __init__(self, speed: float = 1.0, paused: bool = False) -> None:
        _check_speed(speed)
        wall = time.monotonic_ns()
        # (clock time at wall0, wall0, speed, paused): one tuple, replaced whole, so a reader in
        # another thread always sees a consistent state without a lock
        self._state = (wall, wall, float(speed), bool(paused))
        self._lock = threading.Lock()

    def __call__(self) -> int:
        base, wall0, speed, paused = self._state
        if paused:
            return base
        return base + round((time.monotonic_ns() - wall0) * speed)

    @property
    def speed(self) -> float:
        """Host seconds per wall second while running."""
        return self._state[2]

    @property
    def paused(self) -> bool:
        """Whether the clock stands still."""
        return self._state[3]

    def set_speed(self, speed: float) -> None:
        """Run ``speed``× the wall clock from now on."""
        _check_speed(speed)
        self._rebase(speed, self.paused)

    def pause(self) -> None:
        """Stand still from now on."""
        self._rebase(self.speed, True)

    def resume(self) -> None:
        """Run again from where it stood."""
        self._rebase(self.speed, False)

    def _rebase(self, speed: float, paused: bool) -> None:
        with self._lock:
            wall = time.monotonic_ns()
            base, wall0, old, was_paused = self._state
            now = base if was_paused else base + round((wall - wall0) * old)
            self._state = (now, wall, float(speed), bool(paused))


def _check_speed(speed: float) -> None:
    if not speed > 0:
        raise InputError(f"replay speed must be positive, got {speed}")
