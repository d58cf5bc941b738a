"""Stream health: a driver's counters (:class:`DriverStats`) and the one health record of a
stream (:class:`StreamHealth`) that the JSONL events, the run summary and the GUI all read.

A stream's health has two sources: its ring's counters (``StreamCounters``, what arrived on the
host timeline) and, live, the driver feeding it (link state, parser rejects, reconnects).
:class:`StreamHealth` holds both and derives every view from them, so "up", a down reason and the
counts mean the same thing on the terminal, in a file and in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evimae_stream.rings import StreamCounters


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
    rate_hz: float

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
        """The ring's link is up and the driver (if any) is not down or stopped."""
        stats = self.driver
        return self.counters.up and not (stats is not None and stats.state in ("down", "stopped"))

    @property
    def state(self) -> str:
        """The driver's link state (``up``, ``down``, ``connecting``, ``ended``, ``stopped``), or
        ``up``/``down`` from the ring when no driver is known."""
        if self.driver is not None:
            return self.driver.state
        return "up" if self.counters.up else "down"

    @property
    def reason(self) -> str | None:
        """Why the stream is down (None when up), with the driver's last error."""
        if self.up:
            return None
        stats = self.driver
        reason = self.counters.down_reason or (stats.last_error if stats else None)
        if reason is None and stats is not None and stats.state == "stopped":
            reason = "stopped (the sensor is not being read)"
        reason = reason or "down"
        if stats is not None and stats.last_error and stats.last_error not in reason:
            reason = f"{reason} (last error: {stats.last_error})"
        return reason

    @property
    def rate_hz(self) -> float:
        return self.counters.effective_rate_hz

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
    def clock_offset_ms(self) -> float:
        return self.counters.clock_offset_ms

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
        """The run summary's form: ring totals, plus the driver's when one fed the stream."""
        c = self.counters
        out: dict = {
            "samples": c.samples,
            "rate_hz": round(c.effective_rate_hz, 2),
            "drops": c.drops,
            "out_of_order": c.out_of_order,
            "up": c.up,
            "down_reason": c.down_reason,
        }
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
    """A stream's health in one window's event: link up (the ring's), effective rate, estimated
    drops, why the stream is missing from this window (None when used). The per-window form of
    :meth:`StreamHealth.event`, straight from the ring's counters: it runs for every stream of
    every window, so it makes no record first."""
    return {
        "up": bool(counters.up),
        "rate_hz": round(float(counters.effective_rate_hz), 1),
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
