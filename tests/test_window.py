"""The one window geometry and the one frame picker, on hand-checkable numbers, and the runtime
buffer and a whole recording giving the same picks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.errors import InputError
from evimae_stream.window import WindowGeometry, pick_frames, tick_ns

NS = 1_000_000_000
MS = 1_000_000


def test_grids_end_at_t_ref_on_hand_checkable_times() -> None:
    g = WindowGeometry(window_s=1.0, imu_rate_hz=4.0, num_frames=2, video_span_s=0.5)
    t_ref = 10 * NS
    assert g.samples == 4 and g.span_s == 1.0
    assert g.start_ns(t_ref) == 9 * NS and g.video_start_ns(t_ref) == 9_500 * MS
    assert g.imu_grid(t_ref).tolist() == [9_250 * MS, 9_500 * MS, 9_750 * MS, 10_000 * MS]
    assert g.frame_grid(t_ref).tolist() == [9_750 * MS, 10_000 * MS]
    assert g.imu_grid(t_ref).dtype == np.int64 and g.frame_grid(t_ref).dtype == np.int64
    # the video span can be the longer one: it sets where the first window fits
    assert WindowGeometry(1.0, 4.0, 2, 1.5).span_s == 1.5


def test_geometry_is_validated() -> None:
    with pytest.raises(InputError, match="window_s"):
        WindowGeometry(0.0, 50.0, 4, 1.0)
    with pytest.raises(InputError, match="video_span_s"):
        WindowGeometry(1.0, 50.0, 4, -1.0)
    with pytest.raises(InputError, match="num_frames"):
        WindowGeometry(1.0, 50.0, 0, 1.0)


def test_window_ends_cover_the_session_at_the_stride() -> None:
    g = WindowGeometry(1.0, 50.0, 4, 1.0)
    np.testing.assert_allclose(g.ends_s(3.0, 0.5), [1.0, 1.5, 2.0, 2.5, 3.0])
    assert len(g.ends_s(0.5, 0.5)) == 0
    np.testing.assert_allclose(
        WindowGeometry(1.0, 50.0, 4, 1.5).ends_s(3.0, 0.5), [1.5, 2.0, 2.5, 3.0]
    )


def test_training_ends_are_the_runtime_ticks() -> None:
    """One grid for where windows end: a stretch of a session (a carved validation split) and a
    span that is no multiple of the stride are cut at the runtime's ticks ``k·stride``."""
    g = WindowGeometry(1.2, 50.0, 4, 1.2)
    ticks = [tick_ns(0, 0.5, k) / 1e9 for k in range(1, 20)]
    ends = g.ends_s(9.0, 0.5, start_s=3.3)
    np.testing.assert_allclose(ends, [t for t in ticks if t - 1.2 >= 3.3 and t <= 9.0])
    assert ends[0] == pytest.approx(4.5)  # 3.3 + 1.2 = 4.5: the first whole window
    np.testing.assert_allclose(g.ends_s(3.0, 0.5), [1.5, 2.0, 2.5, 3.0])


@settings(max_examples=200, deadline=None)
@given(
    duration=st.floats(0.0, 600.0),
    window=st.floats(0.1, 20.0),
    stride=st.floats(0.05, 10.0),
)
def test_window_ends_property(duration: float, window: float, stride: float) -> None:
    ends = WindowGeometry(window, 50.0, 4, window).ends_s(duration, stride)
    first = max(stride, np.ceil(window / stride - 1e-9) * stride)  # the first tick that fits
    if len(ends) == 0:
        assert duration < first + 1e-6  # no window fits
        return
    assert ends[0] == pytest.approx(first)
    assert ends[0] - window >= -1e-6  # every window lies inside the session
    assert np.all(ends <= duration + 1e-6)
    np.testing.assert_allclose(ends / stride, np.round(ends / stride), atol=1e-6)  # on the grid
    np.testing.assert_allclose(np.diff(ends), stride, rtol=1e-9, atol=1e-9)
    assert ends[-1] + stride > duration - 1e-6  # no further window would fit


#: frame times 0, 90, 110, 210, 330, 400 ms; a 0.4 s span of 4 frames ending at 400 ms has the
#: grid 100, 200, 300, 400 ms
TIMES = np.array([0, 90, 110, 210, 330, 400], np.int64) * MS
SPAN = WindowGeometry(window_s=0.4, imu_rate_hz=50.0, num_frames=4, video_span_s=0.4)


def test_pick_frames_takes_the_nearest_and_the_earlier_on_ties() -> None:
    pick = pick_frames(TIMES, 400 * MS, SPAN, nominal_fps=30.0)
    assert pick.grid_ns.tolist() == [100 * MS, 200 * MS, 300 * MS, 400 * MS]
    # 100 ms: 90 and 110 are both 10 ms away -> the earlier (90); 200 -> 210; 300 -> 330
    assert pick.why is None and pick.index.tolist() == [1, 3, 4, 5]


def test_pick_frames_tolerance_is_two_frame_periods() -> None:
    # 100 fps: 20 ms; the frame nearest 300 ms is 30 ms away
    pick = pick_frames(TIMES, 400 * MS, SPAN, nominal_fps=100.0)
    assert pick.index is None
    assert pick.why == "no frame within 20.0 ms of frame time 2 (nearest 30.0 ms away)"
    assert pick_frames(TIMES, 400 * MS, SPAN, nominal_fps=66.0).index is not None  # 30.3 ms
    # no nominal rate: the median spacing of the frames around the grid (90…400 ms: spacings
    # 20, 100, 120, 70 -> 85 ms, tolerance 170 ms) — the frame at 0 ms is not around the grid
    ok = pick_frames(TIMES, 400 * MS, SPAN)
    assert ok.index is not None and ok.index.tolist() == [1, 3, 4, 5]
    far = np.array([0, 10, 20, 30, 400], np.int64) * MS  # around the grid: 30 -> 400 ms only
    assert pick_frames(far, 400 * MS, SPAN).index is not None  # median 370 ms: all within 740
    # one frame: the grid's own spacing (100 ms, tolerance 200 ms)
    one = np.array([250], np.int64) * MS
    assert pick_frames(one, 400 * MS, SPAN).index.tolist() == [0, 0, 0, 0]  # 150 ms at most
    late = np.array([350], np.int64) * MS
    assert "no frame within 200.0 ms" in pick_frames(late, 400 * MS, SPAN).why  # 250 ms
    assert pick_frames(np.zeros(0, np.int64), 400 * MS, SPAN).why == "no frames"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fps=st.sampled_from([None, 15.0, 30.0]),
    num_frames=st.sampled_from([1, 4, 8]),
    span_s=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_the_buffer_and_a_whole_recording_pick_the_same_frames(seed, fps, num_frames, span_s):
    """The runtime picks from a ring snapshot, training from all of a recording's frame times:
    the same frames either way, with or without a nominal rate (the median case)."""
    rng = np.random.default_rng(seed)
    n = 150
    steps = rng.uniform(5, 80, n) * MS
    steps[rng.integers(0, n, 3)] += rng.uniform(0, 400, 3) * MS  # a few stalls
    times = NS + np.cumsum(steps).astype(np.int64)
    geometry = WindowGeometry(span_s, 50.0, num_frames, span_s)
    buf = StreamBuffer(
        BufferConfig(placements=(), camera_fps=fps, frame_capacity=256),
        clock=VirtualClock(int(times[-1])),
    )
    for i, t in enumerate(times.tolist()):
        buf.frame_sink().push_frame(t, np.full((1, 1, 3), i % 256, np.uint8))
    for t_ref in rng.integers(int(times[0]), int(times[-1]), 5).tolist():
        whole = pick_frames(times, t_ref, geometry, fps)
        w = buf.assemble_window(geometry, t_ref)
        assert np.array_equal(w.frame_grid_ns, whole.grid_ns)
        if whole.index is None:
            assert w.frames is None and w.missing["camera"] == whole.why
            continue
        assert w.frames is not None, w.missing
        assert np.array_equal(w.frame_times_ns, times[whole.index])
        assert [int(f[0, 0, 0]) for f in w.frames] == [int(i) % 256 for i in whole.index]
