"""The lower-envelope line fit under a stream's (device time, arrival) points: the fit every
time map (:mod:`evimae_stream.time_map`) is built on.

Transport delay is never negative, so the best line ``host = a + b · x`` lies under every point
of its sliding window and as high as it can be. Every few samples the window's points are reduced
to the lowest point of each of at most 64 bins, the lower convex hull of those is built, and the
hull edge above the window's mean ``x`` is taken (it maximises the line at the mean, i.e.
minimises the summed delay, among lines under all points). Its slope is clamped to the plausible
drift range, and the intercept is finally lowered to the minimum residual of all points, so the
line is under every point exactly. Between refits a sample arriving below the line lowers the
intercept to it. Cost: O(1) per sample plus an O(window) numpy pass every ``refit_every``
samples.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

_NS = 1_000_000_000
_MAX_BINS = 64


@dataclass
class FitConfig:
    """How a lower-envelope time-map fit behaves.

    ``max_points``/``window_s``: the sliding window (whichever is shorter).
    ``refit_every``: samples between refits once the window holds more than ``2·refit_every``
    points (before that every sample refits, which is cheap).
    ``max_drift_ppm``: the fitted slope is clamped to 1 ± this (real oscillators: ±200 ppm).
    """

    max_points: int = 2000
    window_s: float = 30.0
    refit_every: int = 16
    max_drift_ppm: float = 1000.0

    def __post_init__(self) -> None:
        if self.max_points < 2:
            raise ValueError(f"FitConfig.max_points must be >= 2, got {self.max_points}")
        if not self.window_s > 0:
            raise ValueError(f"FitConfig.window_s must be > 0, got {self.window_s}")
        if self.refit_every < 1:
            raise ValueError(f"FitConfig.refit_every must be >= 1, got {self.refit_every}")
        if not 0 <= self.max_drift_ppm < 1e5:
            raise ValueError(
                f"FitConfig.max_drift_ppm must be in [0, 1e5), got {self.max_drift_ppm}"
            )


class LowerEnvelopeFit:
    """Online line ``y = a + b·x`` under all points of a sliding window (see module doc).

    ``x`` in seconds (device time or index/rate), ``y`` in host nanoseconds. Points must be added
    with strictly increasing ``x``. Internally both are relative to the first point after
    :meth:`reset`, in float64 (exact for ~100 days of nanoseconds).
    """

    def __init__(self, config: FitConfig | None = None) -> None:
        self.config = config or FitConfig()
        cap = self.config.max_points
        self._x = np.zeros(cap, np.float64)  # seconds since anchor
        self._y = np.zeros(cap, np.float64)  # ns since anchor
        self.reset()

    def reset(self) -> None:
        """Forget every point (after a device clock jump)."""
        self._n = 0  # points ever added since reset
        self._since_fit = 0
        self.refitted = False  # did the last add() refit the line
        self._x0 = 0.0
        self._y0 = 0
        self._a = 0.0  # ns, relative to the anchor
        self._b = float(_NS)  # host ns per device second

    @property
    def count(self) -> int:
        """Points in the window."""
        return min(self._n, self.config.max_points)

    @property
    def slope_ns(self) -> float:
        """Host nanoseconds per device second of the line."""
        return self._b

    @property
    def spacing_s(self) -> float:
        """Mean device-time step between the points held (0 before two points)."""
        held = self.count
        if held < 2:
            return 0.0
        cap = self.config.max_points
        newest, oldest = (self._n - 1) % cap, (self._n - held) % cap
        return float(self._x[newest] - self._x[oldest]) / (held - 1)

    def in_hole(self, x: float) -> bool:
        """Whether ``x`` falls in a hole of the window's points (a lost or late point's place):
        its two neighbours are more than 1.5 typical (median) spacings apart, or it lies
        outside them."""
        xs, _ = self._window()
        i = int(np.searchsorted(xs, float(x) - self._x0))
        if not 0 < i < len(xs):
            return True
        return bool(xs[i] - xs[i - 1] > 1.5 * float(np.median(np.diff(xs))))

    @property
    def drift_ppm(self) -> float:
        """Host seconds per device second − 1, in ppm (positive: the device clock runs slow)."""
        return (self._b / _NS - 1.0) * 1e6

    def offset_ns(self, x: float) -> float:
        """Host time of device time ``x`` minus ``x`` itself (both ns): the clock offset there."""
        return self.predict(x) - x * _NS

    def predict(self, x: float) -> float:
        """The line at device time ``x`` (seconds), in host ns (float)."""
        return self._y0 + self._a + self._b * (x - self._x0)

    def add(self, x: float, y_ns: int) -> float:
        """Add the point (x s, y ns), refit when due, and return the line at ``x`` (<= ``y_ns``)."""
        cap = self.config.max_points
        if self._n == 0:
            self._x0 = float(x)
            self._y0 = int(y_ns)
        xr = float(x) - self._x0
        yr = float(y_ns - self._y0)
        self._x[self._n % cap] = xr
        self._y[self._n % cap] = yr
        self._n += 1
        self._since_fit += 1
        self.refitted = (
            self._n <= 2 * self.config.refit_every or self._since_fit >= self.config.refit_every
        )
        if self.refitted:
            self._refit()
        line = self._a + self._b * xr
        if line > yr:  # arrived earlier than any delay seen: the envelope moves down to it
            self._a -= line - yr
            line = yr
        return self._y0 + line

    def pop_last(self, count: int = 1) -> None:
        """Take the newest ``count`` points back out (added with a wrong ``x``) and refit."""
        if self._n == 0:
            return
        self._n = max(0, self._n - count)
        if self._n == 0:
            self.reset()
            return
        self._refit()

    def delays_ns(self) -> np.ndarray:
        """How far each point of the window lies above the line (ns, >= 0): its delay beyond
        the smallest one."""
        x, y = self._window()
        return y - (self._a + self._b * x)

    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        cap = self.config.max_points
        n = self._n
        if n <= cap:
            x, y = self._x[:n], self._y[:n]
        else:
            p = n % cap
            x = np.concatenate((self._x[p:], self._x[:p]))
            y = np.concatenate((self._y[p:], self._y[:p]))
        start = int(np.searchsorted(x, x[-1] - self.config.window_s, side="left"))
        return x[start:], y[start:]

    def _refit(self) -> None:
        self._since_fit = 0
        x, y = self._window()
        n = len(x)
        lo = _NS * (1.0 - self.config.max_drift_ppm * 1e-6)
        hi = _NS * (1.0 + self.config.max_drift_ppm * 1e-6)
        b = self._b
        if n >= 2:
            # lowest point of each bin (residual against the current slope: the drift inside one
            # bin is negligible), then the lower hull of those few points
            bins = min(n, _MAX_BINS)
            per = -(-n // bins)
            r = np.full(bins * per, np.inf)
            r[:n] = y - b * x
            idx = np.argmin(r.reshape(bins, per), axis=1) + np.arange(bins) * per
            idx = idx[idx < n]
            b = _hull_slope_at(x[idx], y[idx], float(x.mean()), b)
            b = min(max(b, lo), hi)
        self._b = b
        self._a = float(np.min(y - b * x))


def _hull_slope_at(px: np.ndarray, py: np.ndarray, xm: float, default: float) -> float:
    """Slope of the lower convex hull of (px, py) (px increasing) over ``xm``; ``default`` if
    the hull is a single point."""
    hull: list[tuple[float, float]] = []
    for x, y in zip(px.tolist(), py.tolist(), strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or above the chord (x1,y1)-(x, y)
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append((x, y))
    if len(hull) < 2:
        return default
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if x2 >= xm:
            return (y2 - y1) / (x2 - x1)
    (x1, y1), (x2, y2) = hull[-2], hull[-1]
    return (y2 - y1) / (x2 - x1)
