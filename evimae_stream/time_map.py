"""Time maps: the per-stream map from a sensor's time to the host timeline.

Every sample is stamped once with the host clock on arrival (DESIGN §3). Arrival times carry
transport jitter (USB, BLE batching, thread scheduling) and the sensor's oscillator drifts against
the host (tens to hundreds of ppm), so a stream's timestamps are not the arrival times. Instead
each stream fits a line ``host = a + b · x`` where ``x`` is the device's own time
(:class:`DeviceTimeMap`) or the sample index at the nominal rate (:class:`IndexTimeMap`), over a
sliding window, and the line is fitted to the LOWER ENVELOPE of the points: the transport delay
is never negative, so the best line lies under every (x, arrival) point and as high as it can
be. The mapped time of a sample is the line at its ``x``; it is never later than its arrival.

The fit is :class:`~evimae_stream.lower_envelope.LowerEnvelopeFit`. A device clock that steps
against the host (a counter that stood still, a clock stepped back or forward by less than a
reset's jump) is found in the residual (:class:`~evimae_stream.residual_step.ResidualStep`) or
in a device time that goes back, and the map re-anchors without dropping a sample.

Every time map returns strictly increasing timestamps: a mapped time that is not after the
previous one (after a reset, or while the fit settles) is clamped to the previous one + 1 ns and
counted in ``clamped``.
"""

from __future__ import annotations

import logging

import numpy as np

from evimae_stream.lower_envelope import FitConfig, LowerEnvelopeFit
from evimae_stream.residual_step import ResidualStep

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_MAX_BURST = 32  # samples a provisional skip may still be taken back over


class TimeMap:
    """Base of the per-stream time maps: strictly increasing output, counters for health.

    ``map(t_host_ns, t_dev)`` returns the sample's host timestamp (int ns), or None when the
    sample is out of order and must be dropped. A map may instead HOLD a sample it cannot judge
    yet (``holding`` is True after such a call: the caller keeps the sample); the next call then
    sets ``released`` to the held sample's timestamp (earlier than that call's own), or leaves it
    None when the held sample is to be dropped after all. Used by one writer thread; readers may
    read the counters and :attr:`offset_ns`/:attr:`drift_ppm` at any time.
    """

    def __init__(self) -> None:
        self.last_ns: int | None = None
        self.clamped = 0
        self.resets = 0
        self.out_of_order = 0
        self.holding = False
        self.released: int | None = None

    @property
    def offset_ns(self) -> float | None:
        """Host time minus device time at the newest sample, ns; None for a map without a
        device clock (arrival or sample index: no offset means anything there)."""
        return None

    @property
    def drift_ppm(self) -> float:
        """Fitted drift of the device against the host, ppm (0 when not applicable)."""
        return 0.0

    def map(self, t_host_ns: int, t_dev: float | None = None) -> int | None:
        """The host timestamp of a sample that arrived at ``t_host_ns``."""
        raise NotImplementedError

    def _monotonic(self, t: float) -> int:
        out = round(t)
        if self.last_ns is not None and out <= self.last_ns:
            self.clamped += 1
            out = self.last_ns + 1
        self.last_ns = out
        return out


class ArrivalTimeMap(TimeMap):
    """Trusts arrival times (already-mapped recordings, synthetic data); only keeps them strictly
    increasing."""

    def map(self, t_host_ns: int, t_dev: float | None = None) -> int | None:
        """``t_host_ns`` itself, clamped to be after the previous output."""
        return self._monotonic(t_host_ns)


class DeviceTimeMap(TimeMap):
    """Device time → host time, for sensors that send their own timestamp (seconds).

    Reset (logged, counted in ``resets``): the device time goes back by more than ``reorder_s``
    (a reboot, a counter wrap) or moves ahead of the host time elapsed since the previous sample
    by more than ``jump_s`` (a device clock jump). Smaller steps of either sign keep the fit and
    shift the device time by the step instead (logged, counted in ``steps`` and ``resets``): a
    sample far below the line (a clock that gained), samples late against it for a while (a
    counter that stood still through a stall, :class:`ResidualStep`), or a device time that goes
    back twice in a row onto times already accepted (a clock stepped back by two sample periods
    or more: the first such sample is held until the second confirms it, so none is dropped; a
    straggler lands in the hole it left instead). A sample whose device time is not after the
    newest accepted one otherwise is out of order: dropped (None), counted. Limit: a step back
    of under two periods drops its first sample, and under one period is mapped early by it.
    """

    def __init__(
        self,
        name: str = "",
        config: FitConfig | None = None,
        reorder_s: float = 1.0,
        jump_s: float = 2.0,
        step_s: float = 0.1,
    ) -> None:
        super().__init__()
        if not reorder_s > 0 or not jump_s > 0:
            raise ValueError(f"DeviceTimeMap {name!r}: reorder_s and jump_s must be > 0")
        self.name = name
        self.fit = LowerEnvelopeFit(config)
        self.reorder_s = reorder_s
        self.jump_s = jump_s
        self.step = ResidualStep(step_s=step_s)
        self.steps = 0
        self._shift = 0.0  # s added to the device time: the steps re-anchored so far
        self._last_dev: float | None = None
        self._last_host: int = 0
        self._last_x = -np.inf
        self._held: tuple[float, int] | None = None  # (device s, host ns): a suspected step back

    @property
    def offset_ns(self) -> float | None:
        """Host minus device time at the newest sample, ns (None before the first)."""
        if self._last_dev is None:
            return None
        return self.fit.offset_ns(self._last_dev + self._shift) + self._shift * _NS

    @property
    def drift_ppm(self) -> float:
        """Fitted drift, ppm."""
        return self.fit.drift_ppm

    def map(self, t_host_ns: int, t_dev: float | None = None) -> int | None:
        """Host timestamp of the sample with device time ``t_dev`` (s) that arrived at
        ``t_host_ns``; None if it is out of order or held (see the class doc)."""
        if t_dev is None:
            raise ValueError(f"DeviceTimeMap {self.name!r}: sample without device time")
        t_dev = float(t_dev)
        self.holding, self.released = False, None
        if self._last_dev is not None:
            d_dev = t_dev - self._last_dev
            d_host = (t_host_ns - self._last_host) / _NS
            if d_dev < -self.reorder_s or d_dev - d_host > self.jump_s:
                self._reset(d_dev, d_host)
            elif d_dev <= 0:
                return self._behind(t_host_ns, t_dev)
        if self._held is not None:  # the sample held was a straggler after all
            self._held = None
            self.out_of_order += 1
        stepped = self.step.check(self.fit, t_dev + self._shift, t_host_ns, self._step_ns())
        if stepped is not None:
            self._realign(self.step.realign(self.fit, stepped))
        return self._add(t_dev, t_host_ns)

    def _add(self, t_dev: float, t_host_ns: int) -> int:
        # a fit's x strictly increases: a re-anchored point never lands on its predecessor
        x = max(t_dev + self._shift, self._last_x + 1e-9)
        self._last_dev, self._last_host, self._last_x = t_dev, t_host_ns, x
        return self._monotonic(self.fit.add(x, t_host_ns))

    def _step_ns(self) -> float:
        """The smallest step: ``step_s``, and more than 2.5 sample periods (a port's backlog
        catching up, or a late sample, moves a point by less than one period)."""
        return max(self.step.step_ns, 2.5 * self.fit.spacing_s * _NS)

    def _behind(self, t_host_ns: int, t_dev: float) -> int | None:
        """A sample whose device time is not after the newest: out of order (dropped: a
        straggler, whose device time falls in the hole it left among the samples accepted), held
        (a step back suspected: late by a period or more, among samples already accepted), or
        the second of a step back (the held one is released first)."""
        step = self.fit.spacing_s * _NS  # a step back moves a sample by a period or more
        x = t_dev + self._shift
        late_ns = t_host_ns - self.fit.predict(x)
        if late_ns > step and self.fit.in_hole(x):  # a straggler fills the hole it left; a
            late_ns = 0.0  # clock stepped back lands among samples already accepted
        held, self._held = self._held, None
        if held is not None:
            if t_dev > held[0] and late_ns > step:
                self.step.clear()
                held_late = held[1] - self.fit.predict(held[0] + self._shift)
                self._realign(held_late / self.fit.slope_ns)
                self.released = self._add(*held)
                return self._add(t_dev, t_host_ns)
            self.out_of_order += 1
        if late_ns > step and self.fit.count >= 2:
            self._held = (t_dev, t_host_ns)
            self.holding = True
            return None
        self.out_of_order += 1
        return None

    def _realign(self, shift_s: float) -> None:
        self.steps += 1
        self.resets += 1
        self._shift += shift_s
        log.warning(
            "stream %s: the device clock stepped by %+.3f s against the host; time map "
            "re-anchored (%d steps so far)",
            self.name,
            -shift_s,
            self.steps,
        )

    def _reset(self, d_dev: float, d_host: float) -> None:
        self.resets += 1
        log.warning(
            "stream %s: device clock jumped by %+.3f s while the host moved %.3f s; "
            "time map reset (%d so far)",
            self.name,
            d_dev,
            d_host,
            self.resets,
        )
        self.fit.reset()
        self.step.clear()
        self._shift = 0.0
        self._last_x = -np.inf
        if self._held is not None:
            self._held = None
            self.out_of_order += 1


class IndexTimeMap(TimeMap):
    """Sample index at the nominal rate → host time, for sensors that send no time at all.

    The ``k``-th sample has device time ``k / nominal_rate_hz``. A sample arriving later than the
    line predicts for the next index (beyond the median delay) by more than
    ``max(min_gap_periods, jitter spread / period + ½)`` periods is taken to follow a drop: the
    index advances by the rounded number of missed periods (counted in ``missed``), so later
    timestamps stay on the right grid. If the NEXT sample then
    arrives more than half a period before the line, the skip was (partly) a late sample (a delay
    spike or the head of a batch): that part is taken back (counted in ``late_spikes``); the late
    sample keeps its too-late timestamp and the next ones are clamped behind it. The jitter
    spread is re-estimated at every refit (95th percentile minus median of the window's delays).
    Samples that keep arriving late against the line (a gap hidden by a spread a burst inflated)
    re-anchor the fit (:class:`ResidualStep`, late steps only; counted in ``steps``/``resets``).

    Limit: when the jitter spread exceeds about half a period (BLE batching), a drop of a single
    sample cannot be told from jitter; the index then lags by that one period until the sliding
    window has forgotten the points before the drop (at most ``window_s``).
    """

    def __init__(
        self,
        nominal_rate_hz: float,
        name: str = "",
        config: FitConfig | None = None,
        min_gap_periods: float = 0.5,
    ) -> None:
        super().__init__()
        if not nominal_rate_hz > 0:
            raise ValueError(
                f"IndexTimeMap {name!r}: nominal rate must be > 0, got {nominal_rate_hz}"
            )
        if not min_gap_periods >= 0.5:
            raise ValueError(
                f"IndexTimeMap {name!r}: min_gap_periods must be >= 0.5, got {min_gap_periods}"
            )
        self.name = name
        self.rate = float(nominal_rate_hz)
        self.period_ns = _NS / self.rate
        self.fit = LowerEnvelopeFit(config)
        self.min_gap_periods = min_gap_periods
        self.missed = 0
        self.late_spikes = 0
        self._pending_skip = 0
        self._burst: list[int] = []
        self._k = -1
        self._median_delay = 0.0
        self._spread = 0.0
        self._fits_seen = -1
        self.step = ResidualStep(negative=False)
        self.steps = 0

    @property
    def drift_ppm(self) -> float:
        """Fitted rate error of the device against its nominal rate, ppm."""
        return self.fit.drift_ppm

    def map(self, t_host_ns: int, t_dev: float | None = None) -> int | None:
        """Host timestamp of the next sample (``t_dev`` is ignored)."""
        k = self._k + 1
        if self._k >= 0:
            delay = t_host_ns - self.fit.predict(k / self.rate)
            over = min(self._pending_skip, round((self._median_delay - delay) / self.period_ns))
            if over >= 1:
                # the skip was (partly) a late burst rather than a drop: take back the part this
                # sample contradicts and re-file the samples since the skip at their true index
                self.missed -= over
                self._pending_skip -= over
                self.late_spikes += 1
                self.fit.pop_last(len(self._burst))
                k0 = self._k - len(self._burst) + 1 - over
                for j, host in enumerate(self._burst):
                    self.fit.add((k0 + j) / self.rate, host)
                self._k -= over
                k -= over
                delay = t_host_ns - self.fit.predict(k / self.rate)
            if len(self._burst) >= _MAX_BURST:
                self._pending_skip = 0
            excess = delay - self._median_delay
            threshold = max(self.min_gap_periods, self._spread / self.period_ns + 0.5)
            if excess > threshold * self.period_ns:
                self._burst = []
                # an ambiguous excess (a late sample right after a drop) leans to the smaller
                # count: the next sample corrects an under-estimate without a take-back
                missed = max(1, round((excess - 0.5 * self._spread) / self.period_ns))
                self.missed += missed
                self._pending_skip = missed
                k += missed
        self._k = k
        if self.step.check(self.fit, k / self.rate, t_host_ns) is not None:
            self._reanchor()
        if self._pending_skip:
            self._burst.append(t_host_ns)
        out = self.fit.add(k / self.rate, t_host_ns)
        if self.fit.refitted and self.fit.count >= 8:
            self._update_spread()
        return self._monotonic(out)

    def _reanchor(self) -> None:
        """Samples have arrived late against the index for ``hold_s``: a gap the jitter spread
        hid (a burst inflates it) or an index that lags. Re-fit from those samples, and forget the
        spread and pending skip measured before them."""
        self.steps += 1
        self.resets += 1
        log.warning(
            "stream %s: samples arrive late against the sample index (a gap or a burst); "
            "index clock re-anchored (%d so far)",
            self.name,
            self.steps,
        )
        self.step.refit(self.fit)
        self._pending_skip = 0
        self._burst = []
        self._median_delay = self._spread = 0.0

    def _update_spread(self) -> None:
        delays = self.fit.delays_ns()
        med, q95 = np.quantile(delays, (0.5, 0.95))
        self._median_delay = float(med)
        self._spread = float(q95 - med)
