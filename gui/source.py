"""What the monitor window pulls from the running system, and the controls it may use.

The window talks to the runtime ONLY through a :class:`MonitorSource`: it reads the
:class:`~evimae_stream.buffer.StreamBuffer` (IMU rings and the camera ring), per-stream health
(driver stats merged with ring counters), the prediction events that arrived since its last pull
(dicts in the runtime's JSONL schema), and a :class:`MonitorStatus`; it calls start/stop,
recording and the replay controls. Every call returns quickly: the pipeline and the drivers run
in their own threads, and this module never does I/O or inference on the caller's thread except
opening a recording's files.

:class:`LocalSource` implements the protocol over a buffer, drivers it starts itself and a
thread-safe queue of prediction events (``post_prediction``). It is what ``python -m gui`` and
the tests use; the runtime's pipeline is adapted to the same protocol.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from drivers.base import Driver, DriverStats
from drivers.replay import ReplayDriver
from evimae_stream.buffer import StreamBuffer
from evimae_stream.errors import InputError
from evimae_stream.rings import StreamCounters
from evimae_stream.types import CAMERA, Segment
from gui.paced import PacedReplay
from gui.recording import Recorder

log = logging.getLogger(__name__)

#: what "max" means in the monitor, for the speed menu and for ``evimae-stream --gui --speed max``
#: alike: a paced replay needs a finite pace, and at 8× the runtime on a laptop CPU still infers
#: most windows (it skips the rest, latest wins) while the window repaints at 30 Hz
MAX_SPEED = 8.0
#: replay speeds the controls offer; None is "max" (:data:`MAX_SPEED`)
SPEEDS: tuple[float | None, ...] = (1.0, 2.0, 4.0, None)
#: prediction events kept for latency percentiles
LATENCY_HISTORY = 200


@dataclass(frozen=True)
class StreamHealth:
    """One stream's health as the monitor shows it: ring counters merged with driver stats.

    ``up``: the ring's link is up and the driver (if any) is not down. ``reason``: why it is
    down (None when up). ``state``: the driver's link state (``up``, ``down``, ``connecting``,
    ``ended``, ``stopped``) or ``up``/``down`` from the ring when no driver is known.
    ``bad_frames``: frames the parser rejected plus samples the ring refused (non-finite).
    """

    name: str
    kind: str
    up: bool
    state: str
    reason: str | None
    rate_hz: float
    samples: int
    drops: int
    bad_frames: int
    clock_offset_ms: float
    drift_ppm: float
    reconnects: int
    last_sample_age_s: float | None


def merge_health(counters: StreamCounters, stats: DriverStats | None) -> StreamHealth:
    """One stream's :class:`StreamHealth` from its ring counters and its driver's stats."""
    driver_down = stats is not None and stats.state in ("down", "stopped")
    up = counters.up and not driver_down
    reason = None
    if not up:
        reason = counters.down_reason or (stats.last_error if stats else None)
        if reason is None and stats is not None and stats.state == "stopped":
            reason = "stopped (the sensor is not being read)"
        reason = reason or "down"
        if stats is not None and stats.last_error and stats.last_error not in reason:
            reason = f"{reason} (last error: {stats.last_error})"
    state = stats.state if stats is not None else ("up" if counters.up else "down")
    return StreamHealth(
        name=counters.name,
        kind=counters.kind,
        up=up,
        state=state,
        reason=reason,
        rate_hz=counters.effective_rate_hz,
        samples=counters.samples,
        drops=counters.drops,
        bad_frames=(stats.bad_frames if stats else 0) + counters.bad_values,
        clock_offset_ms=counters.clock_offset_ms,
        drift_ppm=counters.drift_ppm,
        reconnects=stats.reconnects if stats else 0,
        last_sample_age_s=counters.last_sample_age_s,
    )


@dataclass(frozen=True)
class MonitorStatus:
    """The status bar and the controls' state.

    ``replay``: a recorded session is playing (the replay controls apply); ``position_s`` /
    ``duration_s`` are session seconds then. ``speed`` None is "max". Latencies in ms, None
    before the first prediction. ``timeline_s``: "now" on the prediction timeline (session
    seconds in replay, seconds since start live). ``time_scale``: recorded seconds per host
    second (1 live and for a :class:`~gui.paced.PacedReplay`, whose clock carries the speed;
    the speed for a replay stamped on the wall clock).
    """

    backend: str = "none"
    precision: str = ""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    running: bool = False
    paused: bool = False
    replay: bool = False
    position_s: float = 0.0
    duration_s: float = 0.0
    speed: float | None = 1.0
    recording: str | None = None
    timeline_s: float = 0.0
    time_scale: float = 1.0
    message: str = ""


@dataclass(frozen=True)
class Prediction:
    """One prediction event, normalised from the runtime's JSON dict.

    ``t_s``: end of the window on the monitor's timeline; ``window_s``: its length;
    ``topk``: (label, score) best first; ``latency_ms`` may be None.
    """

    t_s: float
    window_s: float
    label: str | None
    score: float
    topk: tuple[tuple[str, float], ...] = ()
    modalities: tuple[str, ...] = ()
    latency_ms: float | None = None
    reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _num(value: Any, default: float | None = None) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def parse_event(event: Mapping[str, Any]) -> Prediction | None:
    """Read one event dict of the runtime's JSONL schema (:mod:`evimae_stream.runtime.events`)
    into a :class:`Prediction`; None for events of another ``type`` (``start``, ``end``).

    Used keys: ``t_s`` (tick time, s on the run's timeline; replay: session time; falls back to
    ``t_ref_s``), ``window_s`` (optional window length), ``label`` (null: no prediction, see
    ``reason``), ``score``, ``topk`` (``[{"label", "score"}]`` or ``[[label, score]]``),
    ``modalities`` (list; else ``mode``), ``latency_ms``. ``time`` (UNIX emission time) and the
    integer ``window`` index are not timeline positions and are ignored. Raises InputError
    naming the bad field.
    """
    if not isinstance(event, Mapping):
        raise InputError(f"prediction event: expected a JSON object, got {type(event).__name__}")
    if event.get("type", "prediction") != "prediction":
        return None
    t = _num(event.get("t_s"))
    if t is None:
        t = _num(event.get("t_ref_s"))
    if t is None:
        raise InputError(f"prediction event: field 't_s' is missing or not a number in {event}")
    raw_topk = event.get("topk") or []
    if isinstance(raw_topk, (str, Mapping)) or not isinstance(raw_topk, Sequence):
        raise InputError(f"prediction event at t_s={t}: field 'topk' must be a list")
    topk: list[tuple[str, float]] = []
    for item in raw_topk:
        if isinstance(item, Mapping):
            name, score = item.get("label"), _num(item.get("score"))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            name, score = item[0], _num(item[1])
        else:
            name, score = None, None
        if name is None or score is None:
            raise InputError(f"prediction event at t_s={t}: bad 'topk' entry {item!r}")
        topk.append((str(name), score))
    label = event.get("label")
    score = _num(event.get("score"))
    if score is None:
        score = topk[0][1] if topk and label is not None else 0.0
    mods = event.get("modalities") or event.get("mode") or ()
    modalities = (mods,) if isinstance(mods, str) else tuple(str(m) for m in mods)
    reason = event.get("reason")
    return Prediction(
        t_s=float(t),
        window_s=_num(event.get("window_s"), 0.0) or 0.0,
        label=None if label is None else str(label),
        score=float(score),
        topk=tuple(topk),
        modalities=modalities,
        latency_ms=_num(event.get("latency_ms")),
        reason=None if reason is None else str(reason),
        raw=dict(event),
    )


@runtime_checkable
class MonitorSource(Protocol):
    """What the monitor window pulls (~30 Hz, GUI thread; every call returns quickly) and the
    controls it calls."""

    @property
    def buffer(self) -> StreamBuffer:
        """The rings the IMU plots and the video view read."""

    @property
    def labels(self) -> list[Segment]:
        """Ground-truth segments on the timeline (replay of a labelled session), else []."""

    @property
    def classes(self) -> list[str]:
        """Class names in the model's order (fixes the timeline colours), may be []."""

    def health(self) -> dict[str, StreamHealth]:
        """Per-stream health, in the buffer's stream order."""

    def pull_predictions(self) -> list[dict]:
        """Prediction events (runtime JSON schema) that arrived since the last call."""

    def status(self) -> MonitorStatus:
        """Backend, latency, run/pause state, replay position, recording."""

    def start(self) -> None:
        """Start (or restart) the sensors and the pipeline."""

    def stop(self) -> None:
        """Stop the sensors and the pipeline (the window stays open)."""

    def start_recording(self, folder: str | Path) -> Path:
        """Record the streams as a session into ``folder``; returns the session directory."""

    def stop_recording(self) -> None:
        """Finish the recording (closing happens off the caller's thread)."""

    def pause(self) -> None:
        """Replay: hold the position."""

    def resume(self) -> None:
        """Replay: continue."""

    def seek(self, t_s: float) -> None:
        """Replay: jump to session time ``t_s``."""

    def set_speed(self, speed: float | None) -> None:
        """Replay: play at ``speed``× (None: max)."""

    def close(self) -> None:
        """Stop everything and release the sensors."""


def _percentile(values: Iterable[float], q: float) -> float | None:
    arr = np.fromiter(values, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else None


class LocalSource:
    """A :class:`MonitorSource` over a buffer, the drivers that feed it, and posted predictions.

    ``drivers`` maps stream names (placements, ``"camera"``) to the driver feeding each; a
    :class:`ReplayDriver` passed as ``replay`` is mapped to every stream it feeds. Prediction
    events come in from any thread through :meth:`post_prediction` (a dict) or :meth:`emit`
    (the runtime's sink interface: an object with ``to_dict(timings, truth)``); the window
    drains them with :meth:`pull_predictions`.

    ``worker``: optional ``fn(stop: threading.Event)`` run in its own thread between
    :meth:`start` and :meth:`stop` (the pipeline: it should return soon after ``stop`` is set).
    ``backend_info``: optional ``() -> (backend, precision)`` read for the status bar (the
    runtime picks its backend on the first window), else the fixed ``backend``/``precision``.
    ``recorder_factory``: ``(buffer, folder) -> recorder`` with ``.path`` and ``.close()``
    (default: :meth:`gui.recording.Recorder.start`, which copies the rings).
    ``labels``/``classes`` default to the replayed session's. ``timeline_t0_ns``: host time of
    0 s on the live timeline (default: the first :meth:`start`).
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
        recorder_factory: Callable[[StreamBuffer, Path], Any] = Recorder.start,
        timeline_t0_ns: int | None = None,
        max_pending: int = 1000,
    ) -> None:
        self._buffer = buffer
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
        self.recorder_factory = recorder_factory
        self._pending: deque[dict] = deque(maxlen=max_pending)
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
        counters = self._buffer.health()
        stats = {id(d): d.stats for d in self._unique_drivers()}
        out = {}
        for name, c in counters.items():
            d = self.drivers.get(name)
            out[name] = merge_health(c, stats[id(d)] if d is not None else None)
        return out

    def post_prediction(self, event: Mapping[str, Any]) -> None:
        """Queue one prediction event dict (any thread; never raises for a bad event: the
        window skips and counts it). Past ``max_pending`` unread events the oldest are dropped."""
        ev = dict(event)
        try:
            pred = parse_event(ev)
        except InputError:
            pred = None
        with self._lock:
            self._pending.append(ev)
            if pred is not None and pred.latency_ms is not None:
                self._latencies.append(pred.latency_ms)

    def emit(self, pred: Any) -> None:
        """The runtime's sink interface: queue ``pred.to_dict(...)`` (or a dict)."""
        self.post_prediction(pred if isinstance(pred, Mapping) else pred.to_dict(True, False))

    def close_sink(self) -> None:
        """Nothing to release (sink interface)."""

    def pull_predictions(self) -> list[dict]:
        with self._lock:
            out = list(self._pending)
            self._pending.clear()
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
        rec = self.recorder_factory(self._buffer, Path(folder))
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
        self.stop()
        for d in self._unique_drivers():
            d.disconnect()
        if self._worker_thread is not None:
            self._worker_thread.join(timeout_s)
        if closer is not None:
            closer.join(timeout_s)
