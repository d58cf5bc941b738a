"""The driver lifecycle shared by every sensor source (LeRobot-style).

``connect()`` opens the link once (or raises :class:`~evimae_stream.errors.DeviceError`),
``start()`` runs the stream loop in its own daemon thread, ``stop()``/``disconnect()`` end it
promptly, ``stats`` is a consistent snapshot of the counters. The loop never raises: a read error
marks the stream down (``sink.mark_down(reason)``), logs one warning per outage, and reconnects
with capped exponential backoff; the stream is marked up again when data flows.

Subclasses implement three hooks: ``_open()`` (open the link; raise on failure), ``_read()`` (wait
at most ~0.1 s for data, stamp and deliver it, return whether any arrived; raise on a link error)
and ``_close()`` (release the link; never raise).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod

from drivers.config import BackoffConfig
from drivers.protocols.base import StreamParser
from evimae_stream.clock import Clock
from evimae_stream.errors import DeviceError, InputError
from evimae_stream.health import DriverStats
from evimae_stream.sink import ImuSink

log = logging.getLogger(__name__)


class LinkState(str, enum.Enum):
    """Where a driver's link is."""

    CONNECTING = "connecting"  # started, no data yet
    UP = "up"  # data flows
    DOWN = "down"  # lost; reconnecting with backoff
    ENDED = "ended"  # the source ended (a video file without loop)
    STOPPED = "stopped"  # stopped by the owner, or never started


class EndOfStream(Exception):
    """Raised by ``_read`` when a finite source (a file) is over: the loop ends, no reconnect."""


class LinkStalled(Exception):
    """No data for longer than the stall timeout: treated like a read error."""


class Driver(ABC):
    """Base class: lifecycle, reconnect loop with backoff, counters. See the module docstring.

    ``live``: the driver reads a sensor now (False for a recording played back)."""

    live = True

    def __init__(
        self,
        name: str,
        sink,
        backoff: BackoffConfig | None = None,
        stall_timeout_s: float | None = None,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        self.name = name
        self.sink = sink
        self.backoff = backoff or BackoffConfig()
        self.stall_timeout_s = stall_timeout_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._opened = False
        self._state = LinkState.STOPPED
        self._samples = 0
        self._bytes = 0
        self._bad_checksum = 0
        self._bad_parse = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_data_ns = 0
        self._last_data_bytes = 0  # the byte count when data last flowed

    # ---- hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Open the link; raise any exception on failure."""

    @abstractmethod
    def _read(self) -> bool:
        """Wait ≤ ~0.1 s for data, deliver it, return True if any arrived; raise on link errors."""

    @abstractmethod
    def _close(self) -> None:
        """Release the link (idempotent, never raises)."""

    def describe(self) -> str:
        """What the link is (port, address, file) for messages."""
        return self.name

    # ---- lifecycle ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the link now, in the caller's thread; raise DeviceError (one line) on failure."""
        if self._opened:
            return
        try:
            self._open()
        except Exception as exc:
            self._close()
            raise DeviceError(f"{self.describe()}: cannot open: {_reason(exc)}") from None
        self._opened = True
        self._last_data_ns = time.monotonic_ns()

    def start(self) -> None:
        """Run the stream loop in a daemon thread (connecting there if ``connect`` was not
        called or failed)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._last_data_ns = time.monotonic_ns()  # the stall clock starts with the stream
        self._set_state(LinkState.CONNECTING)
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the loop and close the link; returns within about ``timeout_s``."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s: driver thread did not stop within %.1f s", self.name, timeout_s)
        if thread is None or not thread.is_alive():
            self._close_link()
        if self._state not in (LinkState.ENDED,):
            self._set_state(LinkState.STOPPED)

    def disconnect(self) -> None:
        """Stop streaming and release the device."""
        self.stop()
        self._close_link()

    @property
    def running(self) -> bool:
        """Whether the stream thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the stream thread to end (a finite source, or after ``stop``)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def stats(self) -> DriverStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return DriverStats(
                name=self.name,
                state=self._state.value,
                samples=self._samples,
                bytes=self._bytes,
                bad_checksum=self._bad_checksum,
                bad_parse=self._bad_parse,
                dropped=self._dropped,
                reconnects=self._reconnects,
                last_error=self._last_error,
                live=self.live,
                unparsed_bytes=self._bytes - self._last_data_bytes,
            )

    @property
    def state(self) -> LinkState:
        """The link state now."""
        return self._state

    # ---- for subclasses ----------------------------------------------------------------------
    def _record(
        self, samples: int, nbytes: int, bad_checksum: int = 0, bad_parse: int = 0, dropped: int = 0
    ) -> None:
        """Add to the counters (called from the driver thread after delivering data)."""
        with self._lock:
            self._samples += samples
            self._bytes += nbytes
            self._bad_checksum += bad_checksum
            self._bad_parse += bad_parse
            self._dropped += dropped

    # ---- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        delays = self.backoff.delays()
        outage_start: float | None = None
        attempts = 0
        try:
            while not self._stop.is_set():
                try:
                    if not self._opened:
                        attempts += 1
                        self._open()
                        self._opened = True
                        self._last_data_ns = time.monotonic_ns()
                        self._on_opened()
                    if self._read():
                        self._last_data_ns = time.monotonic_ns()
                        self._last_data_bytes = self._bytes
                        if self._state is not LinkState.UP:
                            if self._state is LinkState.DOWN:
                                with self._lock:
                                    self._reconnects += 1
                                log.info(
                                    "%s: back up after %.1f s (%d attempts)",
                                    self.describe(),
                                    time.monotonic() - (outage_start or time.monotonic()),
                                    attempts,
                                )
                            self._set_state(LinkState.UP)
                            self.sink.mark_up()
                            delays = self.backoff.delays()
                            outage_start, attempts = None, 0
                    elif (
                        self.stall_timeout_s is not None
                        and time.monotonic_ns() - self._last_data_ns > self.stall_timeout_s * 1e9
                    ):
                        raise LinkStalled(self._stall_reason())
                except InputError as exc:
                    # a configuration error (e.g. the sink's channel count): retrying cannot help
                    reason = str(exc)
                    log.error("%s: stopped: %s", self.describe(), reason)
                    with self._lock:
                        self._last_error = reason
                    self._set_state(LinkState.DOWN)
                    self.sink.mark_down(reason)
                    break
                except EndOfStream as exc:
                    log.info("%s: %s", self.describe(), exc)
                    self._set_state(LinkState.ENDED)
                    self.sink.mark_down(str(exc))
                    break
                except Exception as exc:
                    if self._stop.is_set():
                        break
                    reason = _reason(exc)
                    self._close_link()
                    with self._lock:
                        self._last_error = reason
                    if self._state is not LinkState.DOWN:
                        outage_start = time.monotonic()
                        log.warning(
                            "%s: stream down (%s); reconnecting with backoff %g–%g s",
                            self.describe(),
                            reason,
                            self.backoff.initial_s,
                            self.backoff.max_s,
                        )
                        self._set_state(LinkState.DOWN)
                        self.sink.mark_down(reason)
                    else:
                        log.debug("%s: reconnect failed: %s", self.describe(), reason)
                    self._stop.wait(next(delays))
        except BaseException:  # the thread must never take the process down
            log.exception("%s: driver loop crashed; stream stays down", self.describe())
            self._set_state(LinkState.DOWN)
        finally:
            self._close_link()

    def _stall_reason(self) -> str:
        """Why the link counts as stalled: silence, or bytes that never made a sample."""
        silent = f"no data for {self.stall_timeout_s:g} s"
        arrived = self._bytes - self._last_data_bytes
        if arrived <= 0:
            return silent
        return (
            f"{silent}: {arrived} bytes arrived but none parsed "
            f"({self._bad_checksum + self._bad_parse} bad frames so far); check the protocol, "
            "baud rate and column layout"
        )

    def _on_opened(self) -> None:  # noqa: B027 (optional hook)
        """Called in the driver thread after each successful (re)open."""

    def _close_link(self) -> None:
        self._opened = False
        try:
            self._close()
        except Exception as exc:  # _close must not raise; never let it escape anyway
            log.debug("%s: close failed: %s", self.describe(), exc)

    def _set_state(self, state: LinkState) -> None:
        with self._lock:
            self._state = state


class ImuDriver(Driver):
    """A driver whose bytes go through a protocol parser into an :class:`ImuSink`.

    ``channels``: values per sample the sink stores (default: the sink's ``channels`` attribute
    when it has one). A sensor that sends more (gyro after acceleration) is cut to that many; one
    that sends fewer stops the driver with an :class:`InputError` naming both counts.
    """

    def __init__(
        self,
        name: str,
        sink: ImuSink,
        parser: StreamParser,
        channels: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(name, sink, **kwargs)
        self.parser = parser
        sink_channels = getattr(sink, "channels", None)
        self.channels = channels or (sink_channels if isinstance(sink_channels, int) else None)
        self._seen = (0, 0)

    def _on_opened(self) -> None:
        self.parser.reset()

    def _ingest(self, t_host_ns: int, data: bytes) -> int:
        """Parse one chunk that arrived at ``t_host_ns`` and push its samples; returns how many."""
        samples = self.parser.feed(data)
        want = self.channels
        for sample in samples:
            values = sample.values
            if want is not None and len(values) != want:
                if len(values) < want:
                    raise InputError(
                        f"{self.describe()}: the sensor sends {len(values)} values per sample "
                        f"but the stream expects {want}; configure {len(values)} IMU channels "
                        "or use a sensor with gyro"
                    )
                values = values[:want]
            self.sink.push(t_host_ns, values, sample.t_dev)
        c = self.parser.counters
        bad = (c.bad_checksum - self._seen[0], c.bad_parse - self._seen[1])
        self._seen = (c.bad_checksum, c.bad_parse)
        self._record(len(samples), len(data), bad_checksum=bad[0], bad_parse=bad[1])
        return len(samples)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
