"""The "now" clocks: the virtual clock of max-speed replays and tests, the host clock."""

from __future__ import annotations

import threading

import pytest

from evimae_stream.clock import HostClock, VirtualClock


def test_virtual_clock():
    vc = VirtualClock(100)
    assert vc.now_ns() == 100
    assert vc.advance_ns(50) == 150
    assert vc.advance_s(1e-6) == 1150
    vc.set_ns(2000)
    assert vc.now_ns() == 2000
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
    assert vc.now_ns() == 6000


def test_host_clock_is_monotonic():
    hc = HostClock()
    a = hc.now_ns()
    b = hc.now_ns()
    assert b >= a > 0
