"""Live synthetic sources: one simulated person streamed in real time into the real rings."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from drivers.base import LinkState
from drivers.config import SyntheticImuConfig
from drivers.factory import make_imu_driver
from drivers.synthetic import SyntheticCameraDriver, SyntheticImuDriver, SyntheticRig
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.synthetic import SyntheticWearer
from evimae_stream.types import PLACEMENTS
from evimae_stream.window import WindowGeometry


def test_live_rig_streams_all_four_imus_and_the_camera_in_real_time() -> None:
    seed = 101
    buf = StreamBuffer(BufferConfig(imu_channels=6))
    drivers = [
        make_imu_driver(SyntheticImuConfig(placement=p, seed=seed), buf.imu_sink(p))
        for p in PLACEMENTS
    ]
    drivers.append(SyntheticCameraDriver(buf.frame_sink(), seed=seed))
    for d in drivers:
        d.start()
    time.sleep(2.5)
    for d in drivers:
        d.stop()
    rig = SyntheticRig.shared(seed)
    elapsed = (time.monotonic_ns() - rig.start_ns) / 1e9
    for p in PLACEMENTS:
        snap = buf.imu[p].snapshot()
        assert 0.8 * 50 * elapsed < len(snap.t_ns) <= 50 * elapsed + 2, p
        assert np.all(np.diff(snap.t_ns) > 0)
        # the very samples the simulated wearer defines for that span, values and arrival stamps
        t_host_s = (snap.arrival_ns - rig.start_ns) / 1e9
        ref = rig.wearer().imu_samples(p, float(t_host_s[0]) - 1e-6, float(t_host_s[-1]) + 1e-6)
        assert np.allclose(ref.t_host_s, t_host_s, atol=1e-9)
        assert np.allclose(ref.values, snap.values, atol=1e-6)
    stats = {d.name: d.stats for d in drivers}
    assert all(s.state == "stopped" and s.samples > 0 for s in stats.values())
    assert len(buf.camera) >= 10  # rendering may drop frames, never lag behind
    window = buf.assemble_window(WindowGeometry(1.0, 50.0, 4, 1.0))
    assert not window.missing, window.missing


def test_scripts_loop_so_a_live_demo_never_ends() -> None:
    clock = VirtualClock(start_ns=10**12)
    got: list[int] = []

    class Sink:
        def push(self, t, values, t_dev=None):
            got.append(t)

        def mark_down(self, reason):
            pass

        def mark_up(self):
            pass

    drv = SyntheticImuDriver(
        SyntheticImuConfig(placement="right_leg", seed=202), Sink(), clock=clock
    )
    drv.wearer = SyntheticWearer(seed=202, actions=1, action_s=(2.0, 2.0), idle_s=(2.0, 2.0))
    period = drv.wearer.duration_s
    drv.start()
    target = drv.rig.start_ns + int(2.5 * period * 1e9)
    while clock() < target:
        clock.advance_ns(20_000_000)
        time.sleep(0.002)
    deadline = time.monotonic() + 5
    while drv._t < 2.5 * period - 0.05 and time.monotonic() < deadline:
        time.sleep(0.01)
    drv.stop()
    assert drv.state is LinkState.STOPPED
    t = (np.array(got) - drv.rig.start_ns) / 1e9
    assert np.all(np.diff(t) > 0)
    assert t[-1] > 2.4 * period
    # each loop delivers the same number of samples as the first
    per_loop = [np.sum((t >= k * period) & (t < (k + 1) * period)) for k in range(2)]
    assert per_loop[0] == pytest.approx(per_loop[1], abs=2) and per_loop[0] > 0.9 * 50 * period


def test_imu_reads_cut_from_blocks_equal_the_wearers_own_samples() -> None:
    # the driver computes the wearer model a block (1 s) at a time and cuts its 20 ms reads from
    # it: every read must be exactly the wearer's samples of that span, as one call gives them
    drv = SyntheticImuDriver(SyntheticImuConfig(placement="left_leg", seed=303), None)
    drv.wearer = SyntheticWearer(seed=303, actions=1, action_s=(3.0, 3.0), idle_s=(2.0, 2.0))
    end = drv.wearer.duration_s
    rng = np.random.default_rng(3)
    edges = np.concatenate([[0.0], np.sort(rng.uniform(0, end + 0.5, 60)), [1.0, 2.0, 2.02]])
    spans = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
    spans += [(0.99, 3.01), (end - 0.3, end), (0.0, end)]
    for lo, hi in spans:
        got, want = drv._script_samples(lo, hi), drv.wearer.imu_samples("left_leg", lo, hi)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert len(drv._blocks) <= 2  # the blocks are not kept past their use
