"""Stream health: a ring's counters (:class:`StreamCounters`), a driver's (:class:`DriverStats`)
and the one health record of a stream (:class:`StreamHealth`) that the JSONL events, the run
summary and the GUI all read.

A stream's health has two sources: its ring's counters (what arrived on the host timeline) and,
live, the driver feeding it (link state, parser rejects, reconnects). :class:`StreamHealth` holds
both and derives every view from them, so "up", a down reason and the counts mean the same thing
on the terminal, in a file and in the window. "Up" means usable: a stream whose link is up but
whose newest sample is stale, or lags the host clock, is not up, and says why.

One rate everywhere (:func:`rate_hz`): samples per second of the stream's own time (the host
timestamps of its mapped samples) over the last :data:`RATE_WINDOW_S` of it. A replay's rings hold
session time, so a 50 Hz session reads 50 Hz at any replay speed; no wall clock enters it.
"""

from __future__ import annotations

from dataclasses import dataclass

_NS = 1_000_000_000
#: the stretch of a stream's own time its rate is measured over (s)
RATE_WINDOW_S = 5.0
#: unparsed bytes that say a stream's data arrives but does not parse (more than a few frames)
UNPARSED_BYTES = 128


def rate_hz(count: int, oldest_ns: int | None, newest_ns: int | None) -> float:
    """Samples per second of stream time: ``count`` samples from ``oldest_ns`` to ``newest_ns``
    (the last :data:`RATE_WINDOW_S` of the stream's timeline, or what its ring still holds of
    it) make ``count - 1`` sample periods. 0 with fewer than two samples."""
    if count < 2 or oldest_ns is None or newest_ns is None or newest_ns <= oldest_ns:
        return 0.0
    return (count - 1) * _NS / (newest_ns - oldest_ns)


@dataclass(frozen=True)
class StreamCounters:
    """A snapshot of one ring's counters (for the GUI, logs and the missing-modality policy).

    ``drops``: samples estimated lost from gaps in the mapped timeline at the nominal rate.
    ``clamped``: timestamps pushed forward to keep the timeline strictly increasing.
    ``rate_hz``: see :func:`rate_hz`.
    ``clock_offset_s``: host minus device time at the newest sample (None without a device
    clock). ``unavailable``: why no window can use the stream now (None when it can).
    ``last_sample_age_s``: now − the newest sample's timestamp (None before the first sample).
    """

    name: str
    kind: str  # "imu" | "camera"
    samples: int
    drops: int
    out_of_order: int
    clamped: int
    clock_resets: int
    bad_values: int
    rate_hz: float
    clock_offset_s: float | None
    drift_ppm: float
    up: bool
    down_reason: str | None
    unavailable: str | None
    last_sample_age_s: float | None
    newest_ns: int | None


@dataclass(frozen=True)
class DriverStats:
    """A snapshot of one driver's health and counters."""

    name: str
    state: str
    samples: int
    bytes: int
    bad_checksum: int
    bad_parse: int
    dropped: int
    reconnects: int
    last_error: str | None
    live: bool = True  # a sensor read now, not a recording played back
    unparsed_bytes: int = 0  # bytes that arrived since the last sample was parsed

    @property
    def bad_frames(self) -> int:
        """Frames or lines rejected by the parser (checksum + parse)."""
        return self.bad_checksum + self.bad_parse


@dataclass(frozen=True)
class StreamHealth:
    """One stream's health: its ring counters and, when a driver feeds it, the driver's stats."""

    counters: StreamCounters
    driver: DriverStats | None = None

    @property
    def name(self) -> str:
        return self.counters.name

    @property
    def kind(self) -> str:
        return self.counters.kind

    @property
    def up(self) -> bool:
        """The stream is usable: its ring's link is up with fresh data on time, and the driver
        (if any) is not down or stopped."""
        stats = self.driver
        down = stats is not None and stats.state in ("down", "stopped")
        return self.counters.unavailable is None and not down

    @property
    def state(self) -> str:
        """The driver's link state (``up``, ``down``, ``connecting``, ``ended``, ``stopped``), or
        ``up``/``down`` from the ring when no driver is known."""
        if self.driver is not None:
            return self.driver.state
        return "up" if self.counters.up else "down"

    @property
    def reason(self) -> str | None:
        """Why the stream is not up (None when up), with the driver's last error."""
        if self.up:
            return None
        stats = self.driver
        c = self.counters
        reason = c.down_reason if not c.up else c.unavailable
        reason = reason or (stats.last_error if stats else None)
        if reason is None and stats is not None and stats.state == "stopped":
            reason = "stopped (the sensor is not being read)"
        reason = reason or "down"
        if stats is not None and stats.unparsed_bytes >= UNPARSED_BYTES and "parsed" not in reason:
            reason = (
                f"{reason}: {stats.unparsed_bytes} bytes arrived since its last sample but none "
                f"parsed ({stats.bad_frames} bad frames so far); check the protocol, baud rate "
                "and column layout"
            )
        if stats is not None and stats.last_error and stats.last_error not in reason:
            reason = f"{reason} (last error: {stats.last_error})"
        return reason

    @property
    def rate_hz(self) -> float:
        """Samples per second of the stream's own time (:func:`rate_hz`)."""
        return self.counters.rate_hz

    @property
    def samples(self) -> int:
        return self.counters.samples

    @property
    def drops(self) -> int:
        return self.counters.drops

    @property
    def bad_frames(self) -> int:
        """Frames the parser rejected plus samples the ring refused (non-finite)."""
        return (self.driver.bad_frames if self.driver else 0) + self.counters.bad_values

    @property
    def reconnects(self) -> int:
        return self.driver.reconnects if self.driver else 0

    @property
    def clock_offset_s(self) -> float | None:
        """Host minus device time (s) of a live sensor with its own clock; None elsewhere (no
        device clock, or a replay, whose host timeline is the session's and not the device's
        host)."""
        live = self.driver is not None and self.driver.live
        return self.counters.clock_offset_s if live else None

    @property
    def drift_ppm(self) -> float:
        return self.counters.drift_ppm

    @property
    def last_sample_age_s(self) -> float | None:
        return self.counters.last_sample_age_s

    def event(self, missing: str | None) -> dict:
        """The per-window JSONL form (see :func:`event_health`)."""
        return event_health(self.counters, missing)

    def summary(self) -> dict:
        """The run summary's form: ring totals and whether the stream was usable at the end (the
        ring's view, as in every window's event), plus the driver's state and counts when one
        fed it."""
        c = self.counters
        out: dict = {
            "samples": c.samples,
            "rate_hz": round(c.rate_hz, 2),
            "drops": c.drops,
            "out_of_order": c.out_of_order,
            "up": c.unavailable is None,
            "down_reason": c.down_reason if not c.up else c.unavailable,
        }
        if self.clock_offset_s is not None:
            out["clock_offset_s"] = round(self.clock_offset_s, 6)
        if self.driver is not None:
            st = self.driver
            out["driver"] = {
                "state": st.state,
                "bad_frames": st.bad_frames,
                "reconnects": st.reconnects,
                "last_error": st.last_error,
            }
        return out


def event_health(counters: StreamCounters, missing: str | None) -> dict:
    """A stream's health in one window's event: up (usable, the ring's view), its rate, estimated
    drops, why the stream is missing from this window (None when used). The per-window form of
    :meth:`StreamHealth.event`, straight from the ring's counters: it runs for every stream of
    every window, so it makes no record first."""
    return {
        "up": counters.unavailable is None,
        "rate_hz": round(float(counters.rate_hz), 1),
        "drops": int(counters.drops),
        "missing": missing,
    }


def buffer_health(buffer, drivers: dict | None = None) -> dict[str, StreamHealth]:
    """Every stream of ``buffer`` in its order, with the stats of the driver feeding it (from
    ``drivers``, by stream name; one driver may feed several streams)."""
    drivers = drivers or {}
    stats: dict[int, DriverStats] = {}
    out = {}
    for name, c in buffer.health().items():
        d = drivers.get(name)
        if d is not None and id(d) not in stats:
            stats[id(d)] = d.stats
        out[name] = StreamHealth(c, stats[id(d)] if d is not None else None)
    return out
