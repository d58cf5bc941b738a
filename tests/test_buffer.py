"""Rings and window assembly: exact samples, gaps, nearest frames, concurrency, fixed memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.errors import InputError
from evimae_stream.rings import FrameRing, ImuRing
from evimae_stream.time_map import ArrivalTimeMap, DeviceTimeMap, IndexTimeMap
from evimae_stream.window import NOT_WHOLE_YET, WindowGeometry
from tests.helpers.timelines import NS, expected_out_of_order, make_timeline

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: the 2 s window of 16 frames and a 50 Hz IMU grid
GEOMETRY = WindowGeometry(2.0, 50.0, 16, 2.0)


def lin(t_ns):
    """A known signal of true time: three channels, linear in time (interpolation is exact)."""
    t = np.asarray(t_ns, np.float64) / NS
    return np.stack([2.0 * t - 7.0, -0.5 * t, np.full_like(t, 3.0)], axis=-1).astype(np.float32)


@SETTINGS
@given(
    rate=st.sampled_from([25.0, 50.0, 100.0, 200.0]),
    seed=st.integers(0, 2**32 - 1),
    window_s=st.sampled_from([1.0, 2.0, 5.0]),
    model_rate=st.sampled_from([50.0, 100.0]),
)
def test_window_values_and_gaps(rate, seed, window_s, model_rate):
    """Exact timestamps (ArrivalTimeMap): interpolation of a linear signal is exact; a window is
    missing exactly when a gap > 3 periods touches it or it starts before the first sample."""
    rng = np.random.default_rng(seed)
    n = int(8 * rate)
    period = NS / rate
    t = 10 * NS + np.round(np.arange(n) * period).astype(np.int64)
    keep = np.ones(n, bool)
    for start in rng.integers(0, n, 3):
        keep[start : start + rng.integers(1, 8)] = False
    keep[0] = keep[-1] = True
    t = t[keep]
    clock = VirtualClock(int(t[-1]))
    buf = StreamBuffer(
        BufferConfig(placements=("left_arm",), imu_rate_hz=rate, camera=False),
        clock=clock,
        time_maps={"left_arm": ArrivalTimeMap()},
    )
    ring = buf.imu_sink("left_arm")
    for ti in t.tolist():
        ring.push(ti, lin(ti))
    t_ref = int(rng.integers(int(t[0]), int(t[-1]) + 1))
    w = buf.assemble_window(WindowGeometry(window_s, model_rate, 4, window_s), t_ref)
    m = round(window_s * model_rate)
    grid = t_ref - round(window_s * NS) + np.round(np.arange(1, m + 1) * NS / model_rate)
    assert np.array_equal(w.imu_times_ns, grid.astype(np.int64))
    # independent expectation
    lo = np.searchsorted(t, grid[0], side="right") - 1
    hi = np.searchsorted(t, grid[-1], side="left")
    if grid[0] < t[0] - period:  # within one period of the first sample its value holds
        assert w.imu["left_arm"] is None and "before the first sample" in w.missing["left_arm"]
        return
    lo = max(lo, 0)
    gaps = np.diff(t[lo : hi + 1])
    if gaps.max(initial=0) > 3 * period:
        assert w.imu["left_arm"] is None and "gap" in w.missing["left_arm"]
        return
    v = w.imu["left_arm"]
    assert v is not None and v.shape == (m, 3)
    np.testing.assert_allclose(v, lin(np.maximum(grid, t[0])), rtol=1e-5, atol=1e-4)
    assert w.imu_mask().tolist() == [True, False, False, False]


@pytest.mark.parametrize(("early_ms", "whole"), [(1.8, True), (19.9, True), (20.1, False)])
def test_window_starting_within_a_sample_period_of_the_first_sample_is_complete(early_ms, whole):
    """Item 16.3: a window whose first grid point lies less than one sample period (20 ms at
    50 Hz) before the stream's first sample is whole (the first value holds there); further
    back the stream has no whole window yet and says so."""
    t0 = 10 * NS
    t = t0 + np.arange(200) * (NS // 50)
    buf = StreamBuffer(
        BufferConfig(placements=("left_arm",), imu_rate_hz=50.0, camera=False),
        clock=VirtualClock(int(t[-1])),
        time_maps={"left_arm": ArrivalTimeMap()},
    )
    ring = buf.imu_sink("left_arm")
    for ti in t.tolist():
        ring.push(ti, lin(ti))
    geometry = WindowGeometry(2.0, 50.0, 4, 2.0)
    t_ref = t0 - round(early_ms * 1e6) + 2 * NS - NS // 50  # grid[0] = t0 - early
    w = buf.assemble_window(geometry, t_ref)
    assert int(w.imu_times_ns[0]) == t0 - round(early_ms * 1e6)
    if whole:
        v = w.imu["left_arm"]
        assert v is not None and "left_arm" not in w.missing
        np.testing.assert_allclose(v[0], lin(t0), rtol=1e-6)  # the first value holds
        np.testing.assert_allclose(v[1:], lin(w.imu_times_ns[1:]), rtol=1e-5, atol=1e-4)
    else:
        assert w.imu["left_arm"] is None
        assert w.missing["left_arm"].startswith(NOT_WHOLE_YET)


def _expected_window(t, v, grid, rate, max_gap_periods):
    """The documented window rule on the samples (t strictly increasing, v values): None when the
    window starts more than a nominal period before the first sample or a gap >
    ``max_gap_periods`` nominal periods touches it, else the linear interpolation of each channel
    onto ``grid`` (the first value held before the first sample)."""
    if (t[0] - grid[0]) * rate > NS:
        return None
    lo = max(0, int(np.searchsorted(t, grid[0], side="right")) - 1)
    hi = int(np.searchsorted(t, grid[-1], side="left")) + 1
    if np.diff(t[lo:hi]).max(initial=0) > max_gap_periods * NS / rate:
        return None
    return np.stack([np.interp(grid, t[lo:hi], v[lo:hi, c]) for c in range(v.shape[1])], axis=-1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.sampled_from([50.0, 100.0]),
    drift=st.floats(-200.0, 200.0),
    seed=st.integers(0, 2**32 - 1),
    jitter_ms=st.floats(0.2, 4.0),
    drop_p=st.floats(0.0, 0.05),
    swap_p=st.floats(0.0, 0.03),
    jump_s=st.one_of(st.floats(-5000.0, -2.0), st.floats(5.0, 5000.0)),
    model_rate=st.sampled_from([50.0, 100.0]),
    max_gap_periods=st.sampled_from([3.0, 6.0]),
)
def test_windows_under_jitter_drift_drops_reordering_and_a_clock_jump(
    rate, drift, seed, jitter_ms, drop_p, swap_p, jump_s, model_rate, max_gap_periods
):
    """A device with its own clock (±200 ppm drift, a clock jump half-way), arrival jitter with a
    heavy tail, lost samples and swapped arrivals streams into a ring whose windows are assembled
    live every 0.5 s. Stamped times must be strictly increasing; the ring must hold exactly the
    samples that were not out of order, at the stamps the stream's time map gives them; and
    every window must hold exactly those samples, interpolated onto the model grid, or be missing
    by the documented rule. Once the time map has settled, the windows carry the signal of TRUE
    time (the jitter is gone)."""
    rng = np.random.default_rng(seed)
    tl = make_timeline(
        rng,
        rate,
        drift,
        12.0,
        jitter_ms=jitter_ms,
        tail_p=0.02,
        tail_ms=30.0,
        drop_p=drop_p,
        swap_p=swap_p,
        jumps_s=(jump_s,),
    )
    late = expected_out_of_order(tl)
    clock = VirtualClock(0)
    buf = StreamBuffer(
        BufferConfig(
            placements=("right_arm",),
            imu_rate_hz=rate,
            imu_seconds=5.0,
            camera=False,
            max_gap_periods=max_gap_periods,
        ),
        clock=clock,
    )
    ring = buf.imu_sink("right_arm")
    reference = DeviceTimeMap("reference")  # the stamps the ring's own (auto) time map must give
    # channel 0 names the sample (its number / 10: within an IMU's physical range), channel 1
    # is its TRUE time in seconds
    label = (tl.index / 10.0).astype(np.float32)
    values = np.stack([label, tl.true_ns / NS, np.ones(len(tl.index))], axis=1)
    stamps: list[int] = []
    kept: list[int] = []
    next_window = int(tl.arrival_ns[0]) + 3 * NS
    windows = settled_windows = 0
    for k, (a, d) in enumerate(zip(tl.arrival_ns.tolist(), tl.t_dev.tolist(), strict=True)):
        clock.set_ns(max(clock(), a))
        ring.push(a, values[k].astype(np.float32), t_dev=d)
        stamp = reference.map(a, d)
        assert (stamp is None) == late[k]
        if stamp is not None:
            stamps.append(stamp)
            kept.append(k)
        if a < next_window:
            continue
        next_window += NS // 2
        t, v = np.array(stamps, np.int64), values[kept]
        w = buf.assemble_window(WindowGeometry(2.0, model_rate, 4, 2.0))
        assert w.t_ref_ns == t[-1]  # the newest stamped sample
        grid = w.t_ref_ns - 2 * NS + np.round(np.arange(1, 2 * model_rate + 1) * NS / model_rate)
        assert np.array_equal(w.imu_times_ns, grid.astype(np.int64))
        want = _expected_window(t, v, grid, rate, max_gap_periods)
        got = w.imu["right_arm"]
        windows += 1
        if want is None:
            assert got is None and w.missing["right_arm"], w.missing
            continue
        assert got is not None, w.missing
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-3)
        # which samples: the interpolated sample numbers lie between the kept neighbours
        used = label[kept][np.searchsorted(t, grid[0], side="right") - 1 :]
        assert got[0, 0] >= used[0] and got[-1, 0] == pytest.approx(used[-1], abs=1e-3)
        # settled (one clock segment for 3 s before the window): the window holds true time
        first = np.searchsorted(t, grid[0] - 3 * NS, side="left")
        if len(set(tl.epoch[kept][first:].tolist())) == 1 and t[0] <= grid[0] - 3 * NS:
            settled_windows += 1
            err_ms = np.abs(got[:, 1].astype(np.float64) - grid / NS) * 1e3
            assert err_ms.max() < 5.0, f"window off true time by {err_ms.max():.2f} ms"
    t = np.array(stamps, np.int64)
    assert np.all(np.diff(t) > 0), "stamped times must be strictly increasing"
    snap = ring.snapshot()
    assert np.all(np.diff(snap.t_ns) > 0)
    held = len(snap.t_ns)
    assert held == ring.capacity and np.array_equal(snap.t_ns, t[-held:])
    assert np.array_equal(snap.values[:, 0], label[kept][-held:].astype(np.float32))
    health = buf.health()["right_arm"]
    assert health.out_of_order == ring.out_of_order == int(late.sum()) and health.clock_resets == 1
    assert windows >= 15
    if max_gap_periods > 3:  # five lost in a row are rare: most windows are whole
        assert settled_windows >= 2, settled_windows


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), num_frames=st.sampled_from([8, 16]))
def test_frames_nearest_in_time(seed, num_frames):
    rng = np.random.default_rng(seed)
    fps = 30.0
    n = 200
    t = 10 * NS + np.round((np.arange(n) + rng.uniform(-0.3, 0.3, n)) * NS / fps).astype(np.int64)
    keep = rng.random(n) > 0.1
    if rng.random() < 0.5:
        s = int(rng.integers(60, 150))
        keep[s : s + int(rng.integers(3, 10))] = False  # a stall
    t = t[keep]
    clock = VirtualClock(int(t[-1]))
    buf = StreamBuffer(BufferConfig(placements=(), camera_fps=fps, frame_capacity=256), clock=clock)
    cam = buf.frame_sink()
    for i, ti in enumerate(t.tolist()):
        cam.push_frame(ti, np.full((2, 2, 3), i % 256, np.uint8))
    t_ref = int(rng.integers(int(t[0]) + 2 * NS, int(t[-1])))
    w = buf.assemble_window(WindowGeometry(2.0, 50.0, num_frames, 2.0), t_ref)
    grid = w.frame_grid_ns
    assert len(grid) == num_frames and grid[-1] == t_ref
    dist = np.abs(t[None, :] - grid[:, None])
    best = dist.argmin(axis=1)  # first minimum = the earlier frame on ties
    if dist.min(axis=1).max() > 2 * NS / fps:
        assert w.frames is None and "no frame within" in w.missing["camera"]
        return
    assert w.frames is not None
    assert np.array_equal(w.frame_times_ns, t[best])
    assert [int(f[0, 0, 0]) for f in w.frames] == [int(b) % 256 for b in best]


def test_t_ref_is_oldest_newest_of_up_streams_and_down_is_missing():
    clock = VirtualClock(20 * NS)
    buf = StreamBuffer(
        BufferConfig(placements=("left_arm", "right_arm"), imu_rate_hz=50.0, camera=False),
        clock=clock,
        time_maps={"left_arm": ArrivalTimeMap(), "right_arm": ArrivalTimeMap()},
    )
    for i in range(600):
        t = 8 * NS + i * 20_000_000
        buf.imu["left_arm"].push(t, lin(t))
        if t <= 19 * NS:
            buf.imu["right_arm"].push(t, lin(t))
    assert buf.default_t_ref() == 19 * NS
    w = buf.assemble_window(GEOMETRY)
    assert w.t_ref_ns == 19 * NS and w.missing == {
        "left_leg": "not configured",
        "right_leg": "not configured",
        "camera": "not configured",
    }
    assert w.newest_sample_ns is not None and w.newest_sample_ns >= 19 * NS
    buf.imu["right_arm"].mark_down("serial port vanished")
    assert buf.default_t_ref() == 8 * NS + 599 * 20_000_000
    w = buf.assemble_window(GEOMETRY)
    assert w.missing["right_arm"] == "down: serial port vanished"
    assert w.imu["left_arm"] is not None and w.imu["right_arm"] is None
    buf.imu["right_arm"].mark_up()
    clock.set_ns(20_900_000_000)  # right_arm is 1.9 s old: stale, no longer holds t_ref back
    assert "stale" in buf.missing_streams()["right_arm"]
    assert buf.default_t_ref() == 8 * NS + 599 * 20_000_000


def test_ring_memory_is_fixed_and_windows_are_copies():
    ring = ImuRing("left_arm", 100, 3, 50.0, time_map=ArrivalTimeMap(), clock=VirtualClock(0))
    arrays = (ring._t, ring._arrival, ring._values)
    nbytes = sum(a.nbytes for a in arrays)
    for i in range(1000):
        ring.push(i * 20_000_000, np.array([i / 10, 0, 0], np.float32))  # within 400 g
    assert (ring._t, ring._arrival, ring._values) == arrays
    assert all(a is b for a, b in zip((ring._t, ring._arrival, ring._values), arrays, strict=True))
    assert sum(a.nbytes for a in arrays) == nbytes and len(ring) == 100
    snap = ring.snapshot()
    assert snap.values[:, 0].tolist() == (np.arange(900, 1000, dtype=np.float32) / 10).tolist()
    kept = snap.values.copy()
    for i in range(1000, 1100):
        ring.push(i * 20_000_000, np.array([-1, 0, 0], np.float32))
    assert np.array_equal(snap.values, kept)
    assert ring.counters().samples == 1100


def test_snapshots_consistent_while_writer_pushes():
    """A real writer thread pushes while readers check every snapshot."""
    period = 5_000_000
    ring = ImuRing("left_arm", 512, 3, 200.0, time_map=ArrivalTimeMap(), clock=VirtualClock(0))
    total = 30_000
    done = threading.Event()

    def writer():
        for i in range(total):
            t = NS + i * period
            # the sample's number / 100: within an IMU's physical range
            ring.push(t, np.array([i / 100, -i / 100, i / 200], np.float32))
        done.set()

    th = threading.Thread(target=writer)
    th.start()
    checks = 0
    while not done.is_set() or checks < 5:
        newest = ring.newest_ns
        snap = ring.snapshot(None if newest is None else newest - 300 * period, None)
        if len(snap.t_ns):
            assert np.all(np.diff(snap.t_ns) == period)
            idx = np.round(snap.values[:, 0].astype(np.float64) * 100).astype(np.int64)
            assert np.array_equal(snap.t_ns, NS + idx * period)
            assert np.array_equal(snap.values[:, 1], -snap.values[:, 0])
            checks += 1
        if done.is_set():
            break
    th.join()
    assert checks > 0 and ring.counters().samples == total


def test_effective_rate_of_a_ring_shorter_than_the_rate_window():
    # 128 frames at 30 fps hold 4.3 s, less than the 5 s rate window: a 30 fps camera is 30 Hz
    clock = VirtualClock(0)
    buf = StreamBuffer(
        BufferConfig(placements=(), camera=True, camera_fps=30.0, frame_capacity=128),
        clock=clock,
    )
    frame = np.zeros((4, 4, 3), np.uint8)
    for i in range(30 * 12):
        t = NS + round(i * NS / 30)
        clock.set_ns(t)
        buf.camera.push_frame(t, frame)
    assert buf.camera.counters().rate_hz == pytest.approx(30.0, rel=1e-3)


def test_auto_clock_and_counters():
    clock = VirtualClock(0)
    a = ImuRing("a", 1000, 3, 50.0, clock=clock)
    b = ImuRing("b", 1000, 3, 50.0, clock=clock)
    for i in range(500):
        if i in (100, 101, 102, 103):
            continue  # four lost samples
        t = NS + i * 20_000_000 + 300_000
        clock.set_ns(t)
        a.push(t, np.zeros(3, np.float32), t_dev=i / 50)
        b.push(t, np.zeros(3, np.float32))
    assert isinstance(a.time_map, DeviceTimeMap) and isinstance(b.time_map, IndexTimeMap)
    for ring in (a, b):
        c = ring.counters()
        assert c.drops == 4 and c.samples == 496 and c.up
        assert abs(c.rate_hz - 50.0) < 1.0
        assert c.last_sample_age_s is not None and c.last_sample_age_s < 0.01
    a.push(clock() + 1, np.zeros(3, np.float32), t_dev=0.5)  # device time went back 9 s
    assert a.counters().clock_resets == 1
    a.push(clock() + 2, np.array([np.nan, 0, 0], np.float32), t_dev=11.0)
    assert a.counters().bad_values == 1


def test_bad_input_names_the_stream():
    ring = ImuRing("left_leg", 10, 3, 50.0)
    with pytest.raises(InputError, match=r"left_leg.*expected \(3,\)"):
        ring.push(0, np.zeros(6, np.float32))
    with pytest.raises(InputError, match="placements"):
        BufferConfig(placements=("left_foot",))
    with pytest.raises(InputError, match="camera"):
        FrameRing().push_frame(0, np.zeros((4, 4), np.uint8))


def test_wear_excerpt_through_ring(wear_dir):
    """Real WEAR accelerometer (50 Hz): a window on the sample grid returns the rows."""
    rows = np.loadtxt(
        wear_dir / "right_wrist_0_10.csv",
        delimiter=",",
        usecols=(2, 3, 4),
        max_rows=2000,
        dtype=np.float32,
    )
    clock = VirtualClock(0)
    buf = StreamBuffer(
        BufferConfig(placements=("right_arm",), imu_rate_hz=50.0, camera=False),
        clock=clock,
        time_maps={"right_arm": ArrivalTimeMap()},
    )
    for i, r in enumerate(rows):
        buf.imu["right_arm"].push(NS + i * 20_000_000, r)
    clock.set_ns(NS + 1999 * 20_000_000)
    w = buf.assemble_window(WindowGeometry(5.0, 50.0, 16, 5.0))
    assert w.t_ref_ns == NS + 1999 * 20_000_000
    np.testing.assert_allclose(w.imu["right_arm"], rows[-250:], rtol=0, atol=1e-6)
    assert w.missing["camera"] == "not configured"
