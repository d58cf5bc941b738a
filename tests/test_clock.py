"""The "now" clocks: the host clock as the default, the virtual clock of max-speed replays, the
ticks and tests, the scaled clock of paced replays."""

from __future__ import annotations

import inspect
import threading
import time

import numpy as np
import pytest

from drivers.base import Driver
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import ScaledClock, VirtualClock
from evimae_stream.errors import InputError


def test_virtual_clock():
    vc = VirtualClock(100)
    assert vc() == 100
    assert vc.advance_ns(50) == 150
    assert vc.advance_s(1e-6) == 1150
    vc.set_ns(2000)
    assert vc() == 2000
    with pytest.raises(ValueError):
        vc.set_ns(1999)
    with pytest.raises(ValueError):
        vc.advance_ns(-1)

    def bump():
        for _ in range(1000):
            vc.advance_ns(1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert vc() == 6000


def test_the_host_clock_is_the_default_of_rings_buffer_and_drivers():
    """One "now" shape everywhere: ``time.monotonic_ns`` itself unless a clock is passed."""
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False))
    assert buf.clock is time.monotonic_ns and buf.imu["left_arm"].clock is time.monotonic_ns
    assert inspect.signature(Driver.__init__).parameters["clock"].default is time.monotonic_ns
    a = time.monotonic_ns()
    buf.imu_sink("left_arm").push(a, np.zeros(3, np.float32))
    age = buf.health()["left_arm"].last_sample_age_s
    b = time.monotonic_ns()
    assert b >= a > 0
    assert 0 <= age <= (b - a) / 1e9


class _Wall:
    """A hand-moved stand-in for ``time.monotonic_ns`` (the input of the clock under test)."""

    def __init__(self) -> None:
        self.t = 1_000_000_000

    def __call__(self) -> int:
        return self.t


def test_scaled_clock_runs_speed_times_the_wall_and_stands_still_when_paused(monkeypatch):
    wall = _Wall()
    monkeypatch.setattr(time, "monotonic_ns", wall)
    clock = ScaledClock(4.0)
    t0 = clock()
    wall.t += 100
    assert clock() == t0 + 400
    clock.set_speed(0.5)  # no jump at the change, the new pace from there
    assert clock() == t0 + 400 and clock.speed == 0.5
    wall.t += 100
    assert clock() == t0 + 450
    clock.pause()
    wall.t += 1_000
    assert clock.paused and clock() == t0 + 450
    clock.resume()
    wall.t += 10
    assert not clock.paused and clock() == t0 + 455
    stopped = ScaledClock(2.0, paused=True)
    wall.t += 50
    assert stopped() == stopped()
    stopped.resume()
    before = stopped()
    wall.t += 50
    assert stopped() == before + 100
    with pytest.raises(InputError, match="speed must be positive"):
        ScaledClock(0.0)
    with pytest.raises(InputError, match="speed must be positive"):
        clock.set_speed(-1.0)
