"""One model input window: its geometry, and the pure functions that fill it from stream data.

Geometry (:class:`WindowGeometry`, all host nanoseconds, ``T = window_s``; the window is
``(t_ref − T, t_ref]``), the one definition the runtime and training both use:

- IMU: ``n = round(T · imu_rate_hz)`` points ``t_k = t_ref − T + (k + 1) / imu_rate_hz``,
  ``k = 0 … n−1``; the last point is ``t_ref`` itself. Values are linearly interpolated between
  the two samples around each point (:func:`resample_imu`). A stream is MISSING for the window
  (its values None, the reason recorded) when its first sample is more than one nominal period
  after the first point (within one period the first value holds), none
  at or after the last, or two consecutive samples around the grid more than ``max_gap_periods``
  (3) nominal periods apart: a gap is never interpolated across.
- Video: ``num_frames`` points ``f_j = t_ref − V + (j + 1) · V / num_frames`` over the video
  span ``V = video_span_s`` (the same end-aligned rule); each takes the frame whose timestamp is
  nearest (ties: the earlier, :func:`pick_frames`). The camera is missing when a point has no
  frame within 2 frame periods.
- Where windows end: on one tick grid, ``origin + k·stride`` (``k = 1, 2, …``, :func:`tick_ns`),
  the origin being 0 s of the run's timeline (a replay: the session's start). The runtime ticks
  on it (live, paced and max speed; its ``t_ref`` is the oldest newest sample at the tick) and
  training cuts recordings at its ticks whose whole window fits in the stretch cut
  (:meth:`WindowGeometry.ends_s`), so a training window of a session ends where a replay of
  that session cuts one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS

_NS = 1_000_000_000
#: how a stream's reason begins while it does not yet reach back to the window's start
NOT_WHOLE_YET = "no whole window yet"


@dataclass(frozen=True)
class WindowGeometry:
    """Where a model window lies on the host timeline (see the module doc): its length, the
    model's IMU rate, and the frame count over the video span. Part of a model's input contract
    (the artifact's ``window_s``, ``imu_rate_hz``, ``num_frames``, ``video_span_s``)."""

    window_s: float
    imu_rate_hz: float
    num_frames: int
    video_span_s: float

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.imu_rate_hz > 0 and self.video_span_s > 0):
            raise InputError(
                f"window: window_s ({self.window_s}), imu_rate_hz ({self.imu_rate_hz}) and "
                f"video_span_s ({self.video_span_s}) must be > 0"
            )
        if self.num_frames < 1:
            raise InputError(f"window: num_frames ({self.num_frames}) must be >= 1")

    @property
    def samples(self) -> int:
        """IMU samples per window on the model grid."""
        return round(self.window_s * self.imu_rate_hz)

    @property
    def span_s(self) -> float:
        """The longest stretch of a stream a window reads."""
        return max(self.window_s, self.video_span_s)

    def start_ns(self, t_ref_ns: int) -> int:
        """The (excluded) start of the IMU window ending at ``t_ref_ns``."""
        return t_ref_ns - round(self.window_s * _NS)

    def video_start_ns(self, t_ref_ns: int) -> int:
        """The (excluded) start of the video span ending at ``t_ref_ns``."""
        return t_ref_ns - round(self.video_span_s * _NS)

    def imu_grid(self, t_ref_ns: int) -> np.ndarray:
        """(samples,) int64 host ns: the model's IMU grid ending at ``t_ref_ns``."""
        k = np.arange(1, self.samples + 1, dtype=np.float64)
        return self.start_ns(t_ref_ns) + np.round(k * (_NS / self.imu_rate_hz)).astype(np.int64)

    def frame_grid(self, t_ref_ns: int) -> np.ndarray:
        """(num_frames,) int64 host ns: the frame times over the video span, evenly spaced, the
        last at ``t_ref_ns``."""
        span = round(self.video_span_s * _NS)
        j = np.arange(1, self.num_frames + 1, dtype=np.float64)
        return self.video_start_ns(t_ref_ns) + np.round(j * (span / self.num_frames)).astype(
            np.int64
        )

    def ends_s(self, end_s: float, stride_s: float, start_s: float = 0.0) -> np.ndarray:
        """Window ends ``t_ref`` (seconds from the recording's origin) over its stretch
        ``[start_s, end_s]``: the ticks ``k·stride_s`` of the runtime's grid (:func:`tick_ns`)
        whose whole window ``(t_ref − span_s, t_ref]`` lies in the stretch."""
        first = max(1, math.ceil((start_s + self.span_s) / stride_s - 1e-9))
        last = math.floor(end_s / stride_s + 1e-9)
        if last < first:
            return np.empty(0)
        return stride_s * np.arange(first, last + 1, dtype=np.float64)


def tick_ns(origin_ns: int, stride_s: float, k: int) -> int:
    """Host time of tick ``k`` of the window grid every ``stride_s`` from ``origin_ns``."""
    return int(origin_ns) + round(k * stride_s * _NS)


def due_tick(origin_ns: int, stride_s: float, now_ns: int) -> int:
    """The newest tick at or before ``now_ns`` (0 before the first)."""
    return max(0, int((now_ns - origin_ns) // round(stride_s * _NS)))


@dataclass(frozen=True)
class Window:
    """A time-aligned window of every stream, ready for preprocessing.

    ``imu``: placement → (n, C) float32 on ``imu_times_ns`` (``geometry.imu_grid(t_ref_ns)``),
    or None when missing.
    ``frames``: ``num_frames`` RGB arrays (H, W, 3) uint8 nearest to ``frame_grid_ns``
    (``geometry.frame_grid(t_ref_ns)``; their own times in ``frame_times_ns``), or None when the
    camera is missing.
    ``missing``: stream name ("left_arm", …, "camera") → why it is missing. Streams the buffer
    does not have at all are listed too ("not configured").
    ``newest_sample_ns``: the newest timestamp among the samples and frames used (latency).
    Nothing here is shared with a ring: a later push cannot change a window.
    """

    t_ref_ns: int
    geometry: WindowGeometry
    imu_times_ns: np.ndarray
    imu: dict[str, np.ndarray | None]
    frame_grid_ns: np.ndarray
    frames: list[np.ndarray] | None
    frame_times_ns: np.ndarray | None
    missing: dict[str, str] = field(default_factory=dict)
    newest_sample_ns: int | None = None

    @property
    def imu_present(self) -> dict[str, bool]:
        """Placement → whether its values are in this window (all four placements)."""
        return {p: self.imu.get(p) is not None for p in PLACEMENTS}

    def imu_mask(self) -> np.ndarray:
        """(4,) bool in the model's placement order (left_arm, right_arm, left_leg, right_leg)."""
        return np.array([self.imu.get(p) is not None for p in PLACEMENTS], dtype=bool)

    def imu_array(self, channels: int | None = None, fill: float = 0.0) -> np.ndarray:
        """(n, 4, C) float32 in placement order; missing placements filled with ``fill``."""
        present = [v for v in self.imu.values() if v is not None]
        c = channels if channels is not None else (present[0].shape[1] if present else 3)
        out = np.full((len(self.imu_times_ns), len(PLACEMENTS), c), fill, np.float32)
        for i, p in enumerate(PLACEMENTS):
            v = self.imu.get(p)
            if v is not None:
                out[:, i, :] = v[:, :c]
        return out


def resample_imu(
    times_ns: np.ndarray,
    values: np.ndarray,
    grid_ns: np.ndarray,
    nominal_rate_hz: float,
    max_gap_periods: float = 3.0,
) -> tuple[np.ndarray | None, str | None]:
    """Linear interpolation of one stream onto ``grid_ns``, or (None, reason) when it cannot be
    done honestly (see module doc).

    ``times_ns`` strictly increasing; it must contain the last sample at or before
    ``grid_ns[0]`` and the first at or after ``grid_ns[-1]`` when they exist (a ring snapshot
    with one sample of margin on each side).
    """
    if len(times_ns) == 0:
        return None, "no samples"
    g0, g1 = int(grid_ns[0]), int(grid_ns[-1])
    early = int(times_ns[0]) - g0
    if early > 0:
        if times_ns[-1] < g0:
            return None, "no samples in the window"
        if early * nominal_rate_hz > _NS:  # within one sample period the first value holds
            why = f"window starts {early / 1e6:.1f} ms before the first sample"
            return None, f"{NOT_WHOLE_YET}: {why}"
    if times_ns[-1] < g1:
        return None, f"window ends {(g1 - int(times_ns[-1])) / 1e6:.1f} ms after the newest sample"
    lo = max(0, int(np.searchsorted(times_ns, g0, side="right")) - 1)
    hi = int(np.searchsorted(times_ns, g1, side="left")) + 1
    t = times_ns[lo:hi]
    if len(t) > 1:
        gaps = np.diff(t)
        worst = int(np.argmax(gaps))
        limit = max_gap_periods * _NS / nominal_rate_hz
        if gaps[worst] > limit:
            return None, (
                f"gap of {gaps[worst] / 1e6:.1f} ms (> {max_gap_periods:g} periods) "
                f"at {(int(t[worst]) - g1) / 1e9:+.3f} s from t_ref"
            )
    # relative float64 times: exact to the ns for any realistic window
    tr = (t - g1).astype(np.float64)
    gr = (grid_ns - g1).astype(np.float64)
    v = values[lo:hi]
    out = np.empty((len(grid_ns), v.shape[1]), np.float32)
    for c in range(v.shape[1]):
        out[:, c] = np.interp(gr, tr, v[:, c])
    return out, None


class FramePick(NamedTuple):
    """The frames of one window: ``index`` into the candidate times (one per grid time, or None
    when the camera is missing for the window, ``why`` says why) and the grid they were picked
    for."""

    index: np.ndarray | None
    grid_ns: np.ndarray
    why: str | None


def pick_frames(
    times_ns: np.ndarray,
    t_ref_ns: int,
    geometry: WindowGeometry,
    nominal_fps: float | None = None,
) -> FramePick:
    """The frame nearest each of ``geometry.frame_grid(t_ref_ns)`` (ties: the earlier) among
    ``times_ns`` (strictly increasing: a ring snapshot or a whole recording's frame times).

    The camera is missing for the window when some grid time has no frame within 2 frame
    periods; the period is ``1 / nominal_fps``, else the median spacing of the frames around the
    grid, else the grid's own spacing.
    """
    grid = geometry.frame_grid(t_ref_ns)
    if len(times_ns) == 0:
        return FramePick(None, grid, "no frames")
    right = np.searchsorted(times_ns, grid, side="left").clip(0, len(times_ns) - 1)
    left = (right - 1).clip(0, None)
    d_right = np.abs(times_ns[right] - grid)
    d_left = np.abs(times_ns[left] - grid)
    idx = np.where(d_left <= d_right, left, right)
    dt = np.minimum(d_left, d_right)
    max_dt = 2.0 * _frame_period_ns(times_ns, grid, geometry, nominal_fps)
    worst = int(np.argmax(dt))
    if dt[worst] > max_dt:
        why = (
            f"no frame within {max_dt / 1e6:.1f} ms of frame time {worst} "
            f"(nearest {dt[worst] / 1e6:.1f} ms away)"
        )
        return FramePick(None, grid, why)
    return FramePick(idx, grid, None)


def _frame_period_ns(
    times_ns: np.ndarray, grid: np.ndarray, geometry: WindowGeometry, nominal_fps: float | None
) -> float:
    if nominal_fps:
        return _NS / nominal_fps
    # the frames around the grid: what a ring snapshot of its range (one frame of margin) holds
    lo = max(0, int(np.searchsorted(times_ns, grid[0], side="left")) - 1)
    hi = int(np.searchsorted(times_ns, grid[-1], side="right")) + 1
    near = times_ns[lo:hi]
    if len(near) >= 2:
        return float(np.median(np.diff(near)))
    return geometry.video_span_s * _NS / geometry.num_frames
