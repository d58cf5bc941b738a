"""The monitor's :class:`LocalSource`: a :class:`~gui.protocol.MonitorSource` over a buffer,
the drivers that feed it and the runtime's predictions (it is a runtime sink). It is what
``python -m gui``, ``evimae-stream --gui`` and the tests use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from drivers.base import Driver
from drivers.replay import ReplayDriver
from evimae_stream.buffer import StreamBuffer
from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.health import StreamHealth, buffer_health
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.labelling import Labeller
from evimae_stream.streams import StreamSpec
from evimae_stream.types import CAMERA, Segment
from gui.paced import PacedReplay
from gui.protocol import MAX_SPEED, MonitorStatus
from gui.recording import RingRecorder

log = logging.getLogger(__name__)

#: predictions kept for latency percentiles
LATENCY_HISTORY = 200


def _percentile(values: Iterable[float], q: float) -> float | None:
    arr = np.fromiter(values, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else None


def display_buffer(
    streams: StreamSpec, clock: Clock = time.monotonic_ns, imu_channels: int = 3
) -> StreamBuffer:
    """The rings the window reads, for the rig's ``streams`` (its placements at their rates,
    its camera), ``imu_channels`` per IMU, on ``clock`` (a paced replay's clock: rates and
    ages then read in session time)."""
    return StreamBuffer(streams.buffer_config(imu_channels=imu_channels), clock=clock)


class LocalSource:
    """A :class:`MonitorSource` over a buffer, the drivers that feed it, and posted predictions.

    ``drivers`` maps stream names (placements, ``"camera"``) to the driver feeding each; a
    :class:`ReplayDriver` passed as ``replay`` is mapped to every stream it feeds. The runtime's
    predictions come in from any thread through :meth:`emit` (the runtime's sink interface);
    the window drains them with :meth:`pull_predictions`.

    ``worker``: optional ``fn(stop: threading.Event)`` run in its own thread between
    :meth:`start` and :meth:`stop` (the pipeline: it should return soon after ``stop`` is set).
    ``backend_info``: optional ``() -> (backend, precision)`` read for the status bar (the
    runtime picks its backend on the first window), else the fixed ``backend``/``precision``.
    ``streams``: the rig's :class:`~evimae_stream.streams.StreamSpec` (what a recording
    holds). ``recorder_factory``: ``folder -> recorder`` with ``.path`` and ``.close()``
    (default: :meth:`gui.recording.RingRecorder.start` for ``streams``, which copies the
    rings; a source with neither cannot record).
    ``labels``/``classes`` default to the replayed session's. ``timeline_t0_ns``: host time of
    0 s on the live timeline (default: the first :meth:`start`). ``labeller``: the run's
    :class:`~evimae_stream.runtime.labelling.Labeller` behind the window's label bar (live).
    """

    def __init__(
        self,
        buffer: StreamBuffer,
        drivers: Mapping[str, Driver] | None = None,
        *,
        replay: ReplayDriver | None = None,
        labels: Sequence[Segment] | None = None,
        classes: Sequence[str] | None = None,
        backend: str = "none",
        precision: str = "",
        worker: Callable[[threading.Event], None] | None = None,
        backend_info: Callable[[], tuple[str, str]] | None = None,
        streams: StreamSpec | None = None,
        recorder_factory: Callable[[Path], Any] | None = None,
        timeline_t0_ns: int | None = None,
        max_pending: int = 1000,
        labeller: Labeller | None = None,
    ) -> None:
        self._buffer = buffer
        self.labeller = labeller
        self.drivers: dict[str, Driver] = dict(drivers or {})
        self.replay = replay
        if replay is not None:
            fed = list(replay.source.imu_sinks)
            if replay.source.frame_sink is not None:
                fed.append(CAMERA)
            for name in fed:
                self.drivers.setdefault(name, replay)
        session = replay.source.session if replay is not None else None
        self._labels = list(labels if labels is not None else (session.labels if session else []))
        self._classes = list(
            classes if classes is not None else ((session.classes or []) if session else [])
        )
        self.backend = backend
        self.precision = precision
        self.worker = worker
        self.backend_info = backend_info
        if recorder_factory is None and streams is not None:
            recorder_factory = partial(RingRecorder.start, streams, buffer)
        self.recorder_factory = recorder_factory
        #: windows the runtime cut but never inferred (its pipeline worker keeps the count)
        self.skipped = 0
        self._pending: deque[Prediction] = deque(maxlen=max_pending)
        self._segments: deque = deque(maxlen=max_pending)  # --segments events (segmenter)
        self._latencies: deque[float] = deque(maxlen=LATENCY_HISTORY)
        self._lock = threading.Lock()
        self._running = False
        self._speed: float | None = None
        if replay is not None and replay.speed != MAX_SPEED:
            self._speed = replay.speed
        self._t0_ns = timeline_t0_ns
        self._recorder: Any = None
        self._message = ""
        self._worker_stop = threading.Event()
        self._worker_thread: threading.Thread | None = None

    # -- what the window reads -----------------------------------------------------------------
    @property
    def buffer(self) -> StreamBuffer:
        return self._buffer

    @property
    def labels(self) -> list[Segment]:
        return self._labels

    @property
    def classes(self) -> list[str]:
        return self._classes

    def _unique_drivers(self) -> list[Driver]:
        seen: dict[int, Driver] = {}
        for d in self.drivers.values():
            seen.setdefault(id(d), d)
        return list(seen.values())

    def health(self) -> dict[str, StreamHealth]:
        return buffer_health(self._buffer, self.drivers)

    def emit(self, pred: Prediction) -> None:
        """Queue one of the runtime's predictions (the runtime's sink interface; any thread).
        Past ``max_pending`` unread predictions the oldest are dropped."""
        with self._lock:
            self._pending.append(pred)
            if pred.latency_ms is not None:
                self._latencies.append(pred.latency_ms)

    def close_sink(self) -> None:
        """Nothing to release (sink interface)."""

    def pull_predictions(self) -> list[Prediction]:
        with self._lock:
            out = list(self._pending)
            self._pending.clear()
        return out

    def emit_segment(self, event) -> None:
        """Queue one of the interval head's segment events (any thread)."""
        with self._lock:
            self._segments.append(event)

    def pull_segments(self) -> list:
        """The segment events that arrived since the last call, oldest first."""
        with self._lock:
            out = list(self._segments)
            self._segments.clear()
        return out

    def timeline_now_s(self) -> float:
        """ "Now" on the prediction timeline: the replay position, or seconds since the origin."""
        if self.replay is not None:
            return self.replay.source.position_s
        if self._t0_ns is None:
            return 0.0
        return (self._buffer.clock() - self._t0_ns) / 1e9

    def status(self) -> MonitorStatus:
        with self._lock:
            lats = list(self._latencies)
        backend, precision = self.backend, self.precision
        if self.backend_info is not None:
            backend, precision = self.backend_info()
        rec = self._recorder
        replay = self.replay
        return MonitorStatus(
            backend=backend,
            precision=precision,
            latency_p50_ms=_percentile(lats, 50),
            latency_p95_ms=_percentile(lats, 95),
            running=self._running and any(d.running for d in self._unique_drivers()),
            paused=bool(replay is not None and replay.paused),
            replay=replay is not None,
            position_s=replay.source.position_s if replay is not None else 0.0,
            duration_s=replay.source.duration_s if replay is not None else 0.0,
            speed=self._speed,
            recording=str(rec.path) if rec is not None else None,
            timeline_s=self.timeline_now_s(),
            time_scale=self._time_scale(),
            message=self._message,
            skipped=self.skipped,
        )

    def _time_scale(self) -> float:
        """Recorded seconds per host second: 1 live and for a :class:`PacedReplay` (its clock
        carries the speed), the speed for a replay stamped on the wall clock."""
        replay = self.replay
        if replay is None or isinstance(replay, PacedReplay):
            return 1.0
        return replay.speed

    # -- controls ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._t0_ns is None:
            self._t0_ns = self._buffer.clock()
        if self.replay is not None and not self.replay.running:
            # from the current position (a plain replay re-anchors to now; a paced one keeps
            # its session-to-clock mapping and starts its clock)
            self.replay.resume()
        for d in self._unique_drivers():
            d.start()
        if self.worker is not None and (self._worker_thread is None or self._worker_stop.is_set()):
            self._start_worker()
        self._running = True
        self._message = ""

    def _start_worker(self) -> None:
        previous = self._worker_thread
        stop = threading.Event()
        self._worker_stop = stop
        worker = self.worker
        assert worker is not None

        def run() -> None:
            if previous is not None:
                previous.join()  # a stopped pipeline drains before the next one starts
            if stop.is_set():
                return
            try:
                worker(stop)
            except Exception as exc:  # shown in the status bar; the window stays up
                log.exception("pipeline stopped")
                self._message = f"pipeline stopped: {exc}"

        self._worker_thread = threading.Thread(target=run, name="monitor-pipeline", daemon=True)
        self._worker_thread.start()

    def stop(self) -> None:
        """Stop the drivers and tell the pipeline to stop; it drains in its own thread (the
        GUI thread never waits for an inference in flight)."""
        self._running = False
        self._worker_stop.set()
        for d in self._unique_drivers():
            d.stop(timeout_s=0.5)

    def start_recording(self, folder: str | Path) -> Path:
        if self._recorder is not None:
            raise InputError(f"already recording to {self._recorder.path}; stop that first")
        if self.recorder_factory is None:
            raise InputError("this monitor source has no stream description to record from")
        rec = self.recorder_factory(Path(folder))
        self._recorder = rec
        self._message = f"recording to {rec.path}"
        return Path(rec.path)

    def stop_recording(self) -> threading.Thread | None:
        """Finish the recording; the files are closed by the returned thread (join it to wait)."""
        rec, self._recorder = self._recorder, None
        if rec is None:
            return None
        self._message = f"recorded {rec.path}"
        closer = threading.Thread(target=rec.close, name="recorder-close", daemon=True)
        closer.start()
        return closer

    def _need_replay(self, what: str) -> ReplayDriver:
        if self.replay is None:
            raise InputError(f"{what}: only a replay has this control; this source is live")
        return self.replay

    def pause(self) -> None:
        self._need_replay("pause").pause()

    def resume(self) -> None:
        self._need_replay("resume").resume()

    def seek(self, t_s: float) -> None:
        self._need_replay("seek").seek(float(t_s))

    def set_speed(self, speed: float | None) -> None:
        rp = self._need_replay("speed")
        if speed is not None and not speed > 0:
            raise InputError(f"replay speed must be positive or max, got {speed}")
        rp.set_speed(MAX_SPEED if speed is None else float(speed))
        self._speed = speed

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop everything and wait (up to ``timeout_s``) for the pipeline and the recording."""
        closer = self.stop_recording()
        if self.labeller is not None and closer is None:
            self.labeller.close()
        self.stop()
        for d in self._unique_drivers():
            d.disconnect()
        if self._worker_thread is not None:
            self._worker_thread.join(timeout_s)
        if closer is not None:
            closer.join(timeout_s)
