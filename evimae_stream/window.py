"""One model input window, and the pure functions that build it from stream snapshots.

Grids (all host nanoseconds, ``T = window_s``, the window is ``(t_ref − T, t_ref]``):

- IMU: ``n = round(T · imu_rate_hz)`` points ``t_k = t_ref − T + (k + 1) / imu_rate_hz``,
  ``k = 0 … n−1``; the last point is ``t_ref`` itself. Values are linearly interpolated between
  the two samples around each point. A stream is MISSING for the window (its values None, the
  reason recorded) when it has no sample at or before the first point, none at or after the
  last, or two consecutive samples around the grid more than ``max_gap_periods`` (3) nominal
  periods apart: a gap is never interpolated across.
- Video: ``num_frames`` points ``f_j = t_ref − T + (j + 1) · T / num_frames`` (the same
  end-aligned rule); each takes the frame whose timestamp is nearest (ties: the earlier). The
  camera is missing when a point has no frame within ``max_frame_dt`` (2 frame periods).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evimae_stream.types import PLACEMENTS

_NS = 1_000_000_000


@dataclass(frozen=True)
class Window:
    """A time-aligned window of every stream, ready for preprocessing.

    ``imu``: placement → (n, C) float32 on ``imu_times_ns``, or None when missing.
    ``frames``: ``num_frames`` RGB arrays (H, W, 3) uint8 nearest to ``frame_grid_ns`` (their own
    times in ``frame_times_ns``), or None when the camera is missing.
    ``missing``: stream name ("left_arm", …, "camera") → why it is missing. Streams the buffer
    does not have at all are listed too ("not configured").
    ``newest_sample_ns``: the newest timestamp among the samples and frames used (latency).
    Nothing here is shared with a ring: a later push cannot change a window.
    """

    t_ref_ns: int
    t_start_ns: int
    window_s: float
    imu_rate_hz: float
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


def imu_grid(t_ref_ns: int, window_s: float, rate_hz: float) -> np.ndarray:
    """(n,) int64 host ns: the model's IMU grid ending at ``t_ref_ns`` (see module doc)."""
    n = round(window_s * rate_hz)
    k = np.arange(1, n + 1, dtype=np.float64)
    return t_ref_ns - round(window_s * _NS) + np.round(k * (_NS / rate_hz)).astype(np.int64)


def frame_grid(t_ref_ns: int, window_s: float, num_frames: int) -> np.ndarray:
    """(num_frames,) int64 host ns: the frame times, evenly spaced, the last at ``t_ref_ns``."""
    span = round(window_s * _NS)
    j = np.arange(1, num_frames + 1, dtype=np.float64)
    return t_ref_ns - span + np.round(j * (span / num_frames)).astype(np.int64)


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
    if times_ns[0] > g0:
        if times_ns[-1] < g0:
            return None, "no samples in the window"
        return None, f"window starts {(int(times_ns[0]) - g0) / 1e6:.1f} ms before the first sample"
    if times_ns[-1] < g1:
        return None, f"window ends {(g1 - int(times_ns[-1])) / 1e6:.1f} ms after the newest sample"
    lo = int(np.searchsorted(times_ns, g0, side="right")) - 1
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


def pick_frames(
    times_ns: np.ndarray, grid_ns: np.ndarray, max_dt_ns: float
) -> tuple[np.ndarray | None, str | None]:
    """Index into ``times_ns`` (strictly increasing) of the frame nearest each grid time (ties:
    the earlier), or (None, reason) when some grid time has no frame within ``max_dt_ns``."""
    if len(times_ns) == 0:
        return None, "no frames"
    right = np.searchsorted(times_ns, grid_ns, side="left").clip(0, len(times_ns) - 1)
    left = (right - 1).clip(0, None)
    d_right = np.abs(times_ns[right] - grid_ns)
    d_left = np.abs(times_ns[left] - grid_ns)
    idx = np.where(d_left <= d_right, left, right)
    dt = np.minimum(d_left, d_right)
    worst = int(np.argmax(dt))
    if dt[worst] > max_dt_ns:
        return None, (
            f"no frame within {max_dt_ns / 1e6:.1f} ms of frame time {worst} "
            f"(nearest {dt[worst] / 1e6:.1f} ms away)"
        )
    return idx, None
