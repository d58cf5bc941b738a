"""Bulk IMU pushes (ImuRing.push_block, ImuGate.push_block, the replay's block path) store exactly
what one push per sample stores: timestamps, values, time maps and every counter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evimae_stream.clock import VirtualClock
from evimae_stream.rings import ImuRing
from evimae_stream.runtime.gate import ImuGate
from evimae_stream.sessions import open_session
from evimae_stream.sessions.playback import ReplaySource
from tests.helpers.sessions import write_replay_session

RATE = 50.0
PERIOD = 20_000_000


def _ring(capacity: int) -> ImuRing:
    return ImuRing("left_arm", capacity, 3, RATE, clock=VirtualClock(0))


def _state(ring: ImuRing) -> tuple:
    snap = ring.snapshot()
    cm = ring.time_map
    return (
        snap.t_ns.tolist(),
        snap.arrival_ns.tolist(),
        snap.values.tolist(),
        ring._n,
        ring.drops,
        ring.out_of_order,
        ring.bad_values,
        ring.up,
        type(cm).__name__,
        None if cm is None else (cm.last_ns, cm.clamped, cm.resets),
        None if cm is None else (cm.fit._n, cm.fit._since_fit, cm.fit._a, cm.fit._b),
    )


@st.composite
def _streams(draw):
    n = draw(st.integers(1, 120))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 5, 0, -1]), min_size=n, max_size=n))
    jitter = draw(st.lists(st.integers(0, 4_000_000), min_size=n, max_size=n))
    bad = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    with_dev = draw(st.booleans())
    k = np.cumsum(steps)
    hosts = 10**9 + k * PERIOD + np.asarray(jitter)
    rng = np.random.default_rng(n)
    values = rng.normal(size=(n, 3)).astype(np.float32)
    values[np.asarray(bad) & (rng.random(n) < 0.3)] = np.nan
    devs = (k / RATE + 3.0) if with_dev else None
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return hosts.astype(np.int64), values, devs, cuts


@settings(max_examples=60, deadline=None)
@given(_streams(), st.sampled_from([8, 64, 1000]))
def test_ring_block_push_equals_per_sample_push(stream, capacity: int) -> None:
    hosts, values, devs, cuts = stream
    one, bulk = _ring(capacity), _ring(capacity)
    for i in range(len(hosts)):
        one.push(int(hosts[i]), values[i], None if devs is None else float(devs[i]))
    stored = 0
    for a, b in zip([0, *cuts], [*cuts, len(hosts)], strict=True):
        stored += bulk.push_block(hosts[a:b], values[a:b], None if devs is None else devs[a:b])
    assert _state(bulk) == _state(one)
    assert stored == one._n


def test_ring_block_push_rejects_a_wrong_channel_count() -> None:
    from evimae_stream.errors import InputError

    with pytest.raises(InputError, match="left_arm"):
        _ring(16).push_block(np.arange(3), np.zeros((3, 6), np.float32))


def test_gate_block_straddling_a_tick_is_split_like_single_pushes() -> None:
    hosts = (10**9 + np.arange(40) * PERIOD).astype(np.int64)
    values = np.random.default_rng(3).normal(size=(40, 6)).astype(np.float32)
    ring_one, ring_bulk = _ring(64), _ring(64)
    gate_one, gate_bulk = ImuGate("left_arm", ring_one), ImuGate("left_arm", ring_bulk)
    for i in range(40):
        gate_one.push(int(hosts[i]), values[i])
    gate_bulk.push_block(hosts[:25], values[:25])
    gate_bulk.push_block(hosts[25:], values[25:])
    for tick in (int(hosts[9]), int(hosts[9]) + 1, int(hosts[30]), None):
        assert gate_bulk.release(tick) == gate_one.release(tick)
        assert _state(ring_bulk) == _state(ring_one)
    assert ring_bulk._n == 40


class _PerSample:
    """A sink without push_block: the replay falls back to one push per sample."""

    def __init__(self, ring: ImuRing) -> None:
        self.ring = ring

    def push(self, t_host_ns, values, t_dev=None) -> None:
        self.ring.push(t_host_ns, np.asarray(values)[:3], t_dev)

    def mark_down(self, reason: str) -> None:
        self.ring.mark_down(reason)

    def mark_up(self) -> None:
        self.ring.mark_up()


def test_replay_block_path_equals_per_sample_path(tmp_path) -> None:
    session = open_session(write_replay_session(tmp_path / "rec", seconds=3.0))
    try:
        rings_one = {p: _ring(256) for p in session.imu}
        rings_bulk = {p: _ring(256) for p in session.imu}
        one = ReplaySource(session, {p: _PerSample(r) for p, r in rings_one.items()}, t0_ns=7)
        bulk = ReplaySource(session, dict(rings_bulk), t0_ns=7)
        for src in (one, bulk):
            src.advance_to(0.77)
            src.reanchor(123_456_789, speed=3.0)
            src.advance_to(2.1)
            src.seek(1.0, 999_000_000_000)
            src.advance_to(3.0)
        assert one.pushed_samples == bulk.pushed_samples > 0
        for p in session.imu:
            assert _state(rings_bulk[p]) == _state(rings_one[p])
    finally:
        session.close()
