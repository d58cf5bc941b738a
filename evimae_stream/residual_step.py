"""A step in a time map's residual: the one rule both time maps use to notice that a device
clock (or a sample index) has stepped against the host and that the fit must start again."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evimae_stream.lower_envelope import LowerEnvelopeFit

_NS = 1_000_000_000


class ResidualStep:
    """Detects a step in a stream's residual (arrival minus the fitted line) of either sign.

    A device clock that loses time (a sample counter that stood still through a stall, a clock
    stepped back) makes every later sample arrive later than the line predicts; one that gains
    (stepped forward by less than a reset's jump) makes them arrive earlier. The lower envelope
    would keep the old line for the whole fit window (30 s), mapping every sample early or late
    by the step. Here: a sample more than ``step_s`` below the line is a step at once (a delay is
    never negative); samples all more than ``step_s`` above it for ``hold_s`` of stream time are
    one (a delay spike or a queued burst ends within that: its newest samples arrive on time).
    The points of a suspected step are kept so the re-fit starts from them. O(1) per sample.
    ``negative=False`` watches late steps only (the index map, whose bursts arrive early by
    design and are handled by its take-back)."""

    def __init__(self, step_s: float = 0.25, hold_s: float = 0.5, negative: bool = True) -> None:
        if not step_s > 0 or not hold_s > 0:
            raise ValueError(f"ResidualStep: step_s and hold_s must be > 0, got {step_s}, {hold_s}")
        self.step_ns = step_s * _NS
        self.hold_s = hold_s
        self.negative = negative
        self.points: list[tuple[float, int]] = []  # (x s, host ns) since the suspected step

    def clear(self) -> None:
        """Forget a suspected step."""
        if self.points:
            self.points = []

    def check(
        self, fit: LowerEnvelopeFit, x: float, t_host_ns: int, min_step_ns: float = 0.0
    ) -> float | None:
        """The residual (ns) when the point (``x`` s, ``t_host_ns``) completes a step of more than
        ``max(step_s, min_step_ns)``, else None (the point is kept while a late step is
        suspected)."""
        if fit.count == 0:
            return None
        step = max(self.step_ns, min_step_ns)
        r = t_host_ns - fit.predict(x)
        if r < -step and self.negative:
            self.points = []
            return r
        if r <= step:
            self.clear()
            return None
        self.points.append((x, t_host_ns))
        if x - self.points[0][0] < self.hold_s:
            return None
        return r

    def refit(self, fit: LowerEnvelopeFit) -> None:
        """Restart ``fit`` from the points of the step but the newest (its caller adds that)."""
        points, self.points = self.points[:-1], []
        fit.reset()
        for x, y in points:
            fit.add(x, y)

    def realign(self, fit: LowerEnvelopeFit, residual_ns: float) -> float:
        """Keep ``fit`` (its slope, its window) and move the step's points onto it instead: the
        shift of ``x`` (s) that puts the lowest of them on the line, to be added to the newest
        point's ``x`` and every later one; the points already added are re-filed at their
        shifted ``x``. The lowest point has the smallest delay, so the shift over-estimates the
        step by that delay at most, and later points that arrive sooner pull the line down to
        them (the envelope's own rule): the map settles within a few samples."""
        points, self.points = self.points, []
        lows = [y - fit.predict(x) for x, y in points] if points else [residual_ns]
        shift = min(lows) / fit.slope_ns
        if len(points) > 1:
            fit.pop_last(len(points) - 1)
            for x, y in points[:-1]:
                fit.add(x + shift, y)
        return shift
