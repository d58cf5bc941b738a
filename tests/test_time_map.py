"""Time maps against synthetic timelines whose true host times and drift are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evimae_stream.lower_envelope import FitConfig
from evimae_stream.rings import ImuRing
from evimae_stream.time_map import ArrivalTimeMap, DeviceTimeMap, IndexTimeMap
from tests.helpers.timelines import NS, expected_out_of_order, make_timeline

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

rates = st.sampled_from([25.0, 50.0, 60.0, 100.0, 200.0])
drifts = st.floats(min_value=-200.0, max_value=200.0)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def run_map(time_map, tl, with_dev=True):
    """Push a timeline through ``time_map``; return the outputs (None where dropped)."""
    out = []
    for a, d in zip(tl.arrival_ns.tolist(), tl.t_dev.tolist(), strict=True):
        out.append(time_map.map(a, d if with_dev else None))
    return out


@SETTINGS
@given(
    rate=rates,
    drift=drifts,
    seed=seeds,
    jitter=st.floats(min_value=0.2, max_value=5.0),
    drop_p=st.floats(min_value=0.0, max_value=0.1),
    swap_p=st.floats(min_value=0.0, max_value=0.02),
)
def test_time_map_removes_jitter_and_tracks_drift(rate, drift, seed, jitter, drop_p, swap_p):
    rng = np.random.default_rng(seed)
    tl = make_timeline(rng, rate, drift, 20.0, jitter_ms=jitter, drop_p=drop_p, swap_p=swap_p)
    cm = DeviceTimeMap("t")
    out = run_map(cm, tl)
    accepted = np.array([o is not None for o in out])
    late = expected_out_of_order(tl)
    # exactly the out-of-order samples are dropped, and counted
    assert np.array_equal(~accepted, late)
    assert cm.out_of_order == int(late.sum())
    assert cm.resets == 0
    mapped = np.array([o for o in out if o is not None], dtype=np.int64)
    true = tl.true_ns[accepted]
    arrival = tl.arrival_ns[accepted]
    assert np.all(np.diff(mapped) > 0), "mapped timestamps must be strictly increasing"
    assert np.all(mapped <= arrival), "a mapped time is never later than the arrival"
    settled = true >= true[0] + 3 * NS
    err_ms = (mapped[settled] - true[settled]) / 1e6
    assert np.abs(err_ms).max() < 3.0, f"mapped time off by {np.abs(err_ms).max():.2f} ms"
    # raw arrivals were much worse than that (the point of the map)
    assert abs(cm.drift_ppm - drift) < 25.0


@SETTINGS
@given(
    rate=rates,
    drift=drifts,
    seed=seeds,
    jumps=st.lists(
        st.one_of(st.floats(-5000.0, -2.0), st.floats(5.0, 5000.0)), min_size=1, max_size=2
    ),
)
def test_time_map_resets_on_device_clock_jumps(rate, drift, seed, jumps):
    rng = np.random.default_rng(seed)
    tl = make_timeline(rng, rate, drift, 24.0, jitter_ms=1.0, jumps_s=tuple(jumps))
    cm = DeviceTimeMap("t")
    out = run_map(cm, tl)
    assert cm.resets == len(jumps)
    accepted = np.array([o is not None for o in out])
    mapped = np.array([o for o in out if o is not None], dtype=np.int64)
    assert np.all(np.diff(mapped) > 0), "strictly increasing even across clock resets"
    true, epoch = tl.true_ns[accepted], tl.epoch[accepted]
    # after each reset the map converges again to the true host time
    for e in range(len(jumps) + 1):
        seg = epoch == e
        settled = seg & (true >= true[seg][0] + 3 * NS)
        err_ms = np.abs(mapped[settled] - true[settled]) / 1e6
        assert settled.sum() > 0
        assert err_ms.max() < 3.0


def test_time_map_drift_and_offset_against_known_clock():
    """A device clock 150 ppm slow, started 1000 s before the host's 5 s mark."""
    rng = np.random.default_rng(7)
    tl = make_timeline(rng, 100.0, 150.0, 40.0, jitter_ms=3.0, tail_p=0.05, tail_ms=80.0)
    cm = DeviceTimeMap("t")
    out = run_map(cm, tl)
    ok = np.array([o is not None for o in out])
    mapped = np.array([o for o in out if o is not None], dtype=np.int64)
    assert abs(cm.drift_ppm - 150.0) < 10.0
    # offset = host − device at the newest sample
    true_offset = (tl.true_ns[-1] - tl.t_dev[-1] * NS) / 1e6
    assert abs(cm.offset_ns / 1e6 - true_offset) < 2.0
    raw_err = np.abs(tl.arrival_ns - tl.true_ns)[ok][1000:] / 1e6
    map_err = np.abs(mapped - tl.true_ns[ok])[1000:] / 1e6
    assert raw_err.max() > 20.0  # the jitter was really there
    assert map_err.max() < 2.0


def test_time_map_needs_device_time():
    with pytest.raises(ValueError, match="without device time"):
        DeviceTimeMap("x").map(0, None)


@SETTINGS
@given(
    rate=rates,
    drift=drifts,
    seed=seeds,
    drop_p=st.floats(min_value=0.0, max_value=0.05),
)
def test_index_time_map_with_drops(rate, drift, seed, drop_p):
    """No device time: the index time map recovers drops and the timeline stays on the grid."""
    rng = np.random.default_rng(seed)
    # wired-serial-like jitter, well under half a period (see IndexTimeMap's documented limit)
    jitter = 0.03 * 1000.0 / rate
    tl = make_timeline(rng, rate, drift, 20.0, jitter_ms=jitter, tail_p=0.0, drop_p=drop_p)
    # add runs of lost samples too
    keep = np.ones(len(tl.index), bool)
    for start in rng.integers(len(keep) // 10, len(keep), 4):
        keep[start : start + rng.integers(1, 12)] = False
    arrival, true = tl.arrival_ns[keep], tl.true_ns[keep]
    ic = IndexTimeMap(rate, "t")
    mapped = np.array([ic.map(int(a)) for a in arrival], dtype=np.int64)
    assert np.all(np.diff(mapped) > 0)
    assert np.all(mapped <= arrival)
    assert ic.missed == int(tl.index[keep][-1] - tl.index[0] + 1 - keep.sum())
    settled = true >= true[0] + 3 * NS
    err_ms = np.abs(mapped[settled] - true[settled]) / 1e6
    assert err_ms.max() < 3.0
    assert abs(ic.drift_ppm - drift) < 25.0


def test_index_time_map_late_spike_is_not_a_drop():
    """One sample delayed by 4 periods (no sample lost): the timeline must not shift."""
    rate = 100.0
    n = 2000
    true = 10 * NS + np.arange(n) * 10_000_000
    arrival = true + 200_000
    arrival[1000] += 35_000_000  # arrives between samples 1003 and 1004 would, in order
    arrival[1001:1004] = arrival[1000] + np.arange(1, 4)  # the three after it queue behind it
    ic = IndexTimeMap(rate, "t")
    mapped = np.array([ic.map(int(a)) for a in arrival], dtype=np.int64)
    assert ic.missed == 0
    assert ic.late_spikes >= 1
    assert np.all(np.diff(mapped) > 0)
    # all but the late sample and the ones clamped right behind it are on time
    err_ms = np.abs(mapped - true) / 1e6
    assert err_ms[1010:].max() < 0.5
    assert err_ms[500:1000].max() < 0.5


def test_arrival_time_map_is_strictly_increasing():
    ac = ArrivalTimeMap()
    out = [ac.map(t) for t in (5, 5, 3, 10, 10)]
    assert out == [5, 6, 7, 10, 11]
    assert ac.clamped == 3


def test_fit_config_validation():
    with pytest.raises(ValueError, match="max_points"):
        FitConfig(max_points=1)
    with pytest.raises(ValueError, match="nominal rate"):
        IndexTimeMap(0.0)


def test_time_map_window_bounds_memory():
    cm = DeviceTimeMap("t", FitConfig(max_points=64, refit_every=4))
    xs = cm.fit._x
    for k in range(1000):
        cm.map(NS + k * 10_000_000, k / 100)
    assert cm.fit._x is xs and cm.fit.count == 64


def _counter_with_step(kind: str, step_s: float, rate: float = 50.0, seed: int = 1):
    """A 40 s sample-counter stream (device time = index / rate) whose device clock at 10 s
    stalls for ``step_s`` (no samples, the counter stands still: it loses that much) or steps
    by ``step_s`` (+: gains, −: loses) while the samples go on. Returns (true host ns, arrival
    ns, device s) of the samples that arrive."""
    rng = np.random.default_rng(seed)
    n = int(40 * rate)
    true = 5 * NS + np.round(np.arange(n) / rate * NS).astype(np.int64)
    t_dev = 1000.0 + np.arange(n) / rate
    after = true >= 15 * NS
    keep = np.ones(n, bool)
    if kind == "stall":
        keep = ~(after & (true < 15 * NS + round(step_s * NS)))
        t_dev[after] -= step_s
    else:
        t_dev[after] += step_s
    arrival = true + np.round(rng.exponential(1.5e6, n)).astype(np.int64) + 1
    return true[keep], arrival[keep], t_dev[keep]


@pytest.mark.parametrize(
    ("kind", "step_s"),
    [("stall", s) for s in (0.2, 0.5, 0.9, 1.5)]
    + [("step", s) for s in (-0.9, -0.5, -0.2, -0.06, 0.2, 0.5, 0.9, 1.5)],
)
def test_device_clock_stall_or_step_of_either_sign_drops_nothing_and_realigns(kind, step_s):
    """Item 16.14: a device clock that loses time (a counter through a stall, a step back of
    under 1 s) or gains some maps every later sample off by the step for the whole fit window
    (30 s), and a step back dropped its samples as out of order until the clock passed its
    newest time again. The step must be found in the residual (or in the device time going
    back) and re-anchored: every sample that arrives is stored, in order, and after a short
    re-fit period (a step at once, a stall after ``ResidualStep.hold_s``) each is within a few
    ms of its true time."""
    true, arrival, t_dev = _counter_with_step(kind, step_s)
    ring = ImuRing("t", len(true), 3, 50.0, time_map=DeviceTimeMap("t"))
    index = np.arange(len(true), dtype=np.float32)
    for k, (a, d) in enumerate(zip(arrival.tolist(), t_dev.tolist(), strict=True)):
        ring.push(a, np.array([index[k] / 10, 0.0, 1.0], np.float32), t_dev=d)
    snap = ring.snapshot()
    assert len(snap.t_ns) == len(true) and ring.out_of_order == 0, "a sample was dropped"
    np.testing.assert_array_equal(snap.values[:, 0], index / 10)  # in arrival order
    assert np.all(np.diff(snap.t_ns) > 0)
    assert np.all(snap.t_ns <= arrival)
    cm = ring.time_map
    assert cm.resets == cm.steps == 1
    refit_s = 0.6 if kind == "stall" else 0.3
    settled = true >= 15 * NS + round(((step_s if kind == "stall" else 0.0) + refit_s) * NS)
    before = true < 15 * NS
    err_ms = np.abs(snap.t_ns - true) / 1e6
    assert err_ms[before & (true >= 8 * NS)].max() < 5.0
    assert err_ms[settled].max() < 5.0, f"off by {err_ms[settled].max():.1f} ms after the step"
    if kind == "step":
        assert ring.drops == 0


@pytest.mark.parametrize(
    ("drift", "seed", "jitter", "drop_p"),
    [(191.1, 203478769, 4.66, 0.066), (56.8, 1748819236, 4.94, 0.063)],
)
def test_stragglers_of_a_lossy_200hz_stream_are_not_taken_for_a_step_back(
    drift, seed, jitter, drop_p
):
    """At 200 Hz with 6 % of samples lost and 5 % delayed by ~80 ms, many late samples are
    behind the newest device time by over 0.1 s, and the mean spacing of the accepted ones is
    1.3 periods: a straggler's hole (2 periods) must be told from a step back by the typical
    (median) spacing, so each is dropped as out of order and the map never steps."""
    tl = make_timeline(
        np.random.default_rng(seed), 200.0, drift, 20.0, jitter_ms=jitter, tail_p=0.05,
        tail_ms=80.0, drop_p=drop_p, swap_p=0.012,
    )  # fmt: skip
    cm = DeviceTimeMap("t")
    accepted = np.array([o is not None for o in run_map(cm, tl)])
    assert np.array_equal(~accepted, expected_out_of_order(tl))
    assert cm.steps == cm.resets == 0


def test_index_clock_re_anchors_after_a_burst_then_a_gap():
    """Item 16.2: a sender without device time bursts 6.2 s of backlog after a reconnect, and
    2 s later loses 2 s of samples: the spread the burst inflated hides the gap, and the index
    clock stays 2 s behind its arrivals for the fit window (30 s). It must re-anchor within
    about a second and stay on the arrivals."""
    rate = 50.0
    rng = np.random.default_rng(0)
    t = np.arange(int(60 * rate)) / rate
    arrival = t + rng.exponential(0.002, len(t))
    backlog = (t >= 10) & (t < 16.2)
    arrival[backlog] = 16.2 + np.linspace(0, 0.3, backlog.sum())  # the burst
    keep = ~((t >= 18) & (t < 20))  # then a gap
    t, arrival = t[keep], np.maximum.accumulate(arrival[keep])
    im = IndexTimeMap(rate, "t")
    mapped = np.array([im.map(5 * NS + round(a * NS)) for a in arrival], dtype=np.int64)
    lag_ms = (5 * NS + np.round(arrival * NS).astype(np.int64) - mapped) / 1e6
    assert np.all(np.diff(mapped) > 0)
    assert np.all(lag_ms >= -0.01)  # never later than the arrival (but a clamp's 1 ns)
    after = t >= 21.0  # a second after the gap
    assert lag_ms[after].max() < 30.0, f"{lag_ms[after].max():.0f} ms behind the arrivals"
    assert im.steps == 1
