"""An IMU published on the Lab Streaming Layer, read through an LSL inlet (``lsl:`` URIs).

The stream is found by its properties (:meth:`~drivers.config.LslImuConfig.predicate`) on
every (re)open, so a publisher that restarts is found again; its channels and units come from
the stream's ``<desc><channels>`` metadata or the URI (:mod:`evimae_stream.channel_map`).

Clock rule (one correction, then our fit): a sample's LSL timestamp is on the publisher's
``local_clock``; ``t_dev = timestamp + time_correction()`` (liblsl's latest estimate of that
clock's offset to ours, refreshed every second) puts it on this machine's LSL clock. Chunks
that arrive before liblsl's first estimate (about 0.6 s after connecting, longer on a loaded
machine) are held, each with its arrival stamp, and delivered once it is known; the outlet's
backlog of samples stamped before we connected is dropped (counted), so a stream starts when
we subscribe. The inlet
applies no processing of its own (``processing_flags=0``: no clocksync, no dejitter), and the
ring's lower-envelope device→host fit (:mod:`evimae_stream.time_map`) then maps ``t_dev`` to the
host timeline, removing jitter and drift once. Each chunk is stamped on arrival, as every driver.

A stream that vanishes (its outlet closed: the inlet is made with ``recover=False``, so the pull
raises; or no data for ``stall_timeout_s``) is marked down, and the base driver's reconnect loop
resolves it again with backoff.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from drivers.base import Driver
from drivers.config import LslImuConfig
from evimae_stream.channel_map import ChannelMap, channel_map
from evimae_stream.clock import Clock
from evimae_stream.extras import require_lsl

log = logging.getLogger(__name__)

#: seconds between refreshes of the clock offset
OFFSET_EVERY_S = 1.0
#: chunks held while waiting for the first clock offset (the oldest are dropped beyond)
MAX_HELD = 1000


def channel_info(info) -> tuple[list[str], list[str]]:
    """(labels, units) from a pylsl StreamInfo's ``<desc><channels>`` ('' where not given)."""
    labels, units = [], []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling()
    n = info.channel_count()
    return (labels + [""] * n)[:n], (units + [""] * n)[:n]


class LslImuDriver(Driver):
    """Reads one LSL stream into an :class:`~evimae_stream.sink.ImuSink` (see the module doc)."""

    def __init__(self, config: LslImuConfig, sink, clock: Clock = time.monotonic_ns) -> None:
        super().__init__(
            config.placement, sink, config.backoff, config.stall_timeout_s, clock=clock
        )
        self.config = config
        self._inlet = None
        self._map: ChannelMap | None = None
        self._offset: float | None = None
        self._offset_at = 0.0
        self._since = 0.0
        self._held: list[tuple[int, list, list]] = []

    def describe(self) -> str:
        return self.config.uri or f"lsl:{self.config.predicate()}"

    def _open(self) -> None:
        pylsl = require_lsl(self.describe())
        c = self.config
        found = pylsl.resolve_bypred(c.predicate(), 1, c.resolve_timeout_s)
        if not found:
            raise ConnectionError(f"no LSL stream with {c.predicate()} is visible")
        inlet = pylsl.StreamInlet(found[0], max_buflen=30, recover=False, processing_flags=0)
        try:
            info = inlet.info(timeout=c.resolve_timeout_s)
            labels, units = channel_info(info)
            self._map = channel_map(labels, units, self.describe(), c.cols, c.unit, c.gunit)
            inlet.open_stream(timeout=c.resolve_timeout_s)
        except BaseException:
            inlet.close_stream()
            raise
        self._offset = None
        self._held = []
        self._since = pylsl.local_clock()
        self._inlet = inlet

    def _refresh_offset(self) -> None:
        """liblsl's latest clock offset (it measures in the background; the first estimate
        takes ~0.6 s, until then the offset stays None)."""
        if self._offset is not None and time.monotonic() - self._offset_at < OFFSET_EVERY_S:
            return
        from pylsl.util import TimeoutError as NotYet

        try:
            self._offset = self._inlet.time_correction(timeout=0.0)
            self._offset_at = time.monotonic()
        except NotYet:
            pass

    def _read(self) -> bool:
        chunk, stamps = self._inlet.pull_chunk(timeout=0.1, max_samples=512)
        if stamps:
            self._held.append((self.clock(), chunk, stamps))
            if len(self._held) > MAX_HELD:
                self._record(0, 0, dropped=len(self._held.pop(0)[2]))
        self._refresh_offset()
        if self._offset is None or not self._held:
            return bool(stamps)  # the link is alive while it waits for the offset
        held, self._held = self._held, []
        for t_host, rows, times in held:
            self._push(t_host, rows, times)
        return True

    def _push(self, t_host: int, chunk: list, stamps: list) -> None:
        """Deliver one chunk that arrived at ``t_host`` (the backlog before ``_since`` dropped)."""
        t_dev = np.asarray(stamps, dtype=np.float64) + self._offset
        keep = t_dev >= self._since
        values = self._map.apply(np.asarray(chunk, dtype=np.float64).reshape(len(stamps), -1))
        for row, t in zip(values[keep], t_dev[keep], strict=True):
            self.sink.push(t_host, row, float(t))
        self._record(int(keep.sum()), values.nbytes, dropped=int((~keep).sum()))

    def _close(self) -> None:
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            inlet.close_stream()
