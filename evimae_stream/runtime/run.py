"""The composer of runs: the one place that wires a recognition run.

A :class:`Composer` owns what every run is made of — the clock and the time origin, the rig
(rings and gates, :mod:`evimae_stream.runtime.rig`), the drivers (all from the driver factory,
:mod:`drivers.factory`), the recogniser, the outputs and the clean-up — and builds the three kinds
of run from them:

- :meth:`Composer.replay` at ``speed=None``: ``--speed max``, a virtual clock from the session's
  first stamp, tick by tick (:mod:`evimae_stream.runtime.max_speed`), deterministic;
- :meth:`Composer.replay` at a speed: a paced replay on a scaled clock through a
  :class:`~evimae_stream.runtime.live.LiveRun`, as live;
- :meth:`Composer.live`: sensors (:class:`~drivers.factory.SourcePlan`), optionally recorded.

Extension points are explicit (:class:`Hooks`): extra sinks that receive every prediction, a
stage-timing hook (see :mod:`evimae_stream.runtime.recognizer`), and a wall-clock latency that
follows a clock whose speed changes. The monitor, which restarts runs on seeks and owns its
drivers' lifecycle, composes its runs from the parts: :meth:`Composer.rig`,
:meth:`Composer.outputs`, :meth:`Composer.live_run` and :func:`make_drivers`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evimae_stream.clock import Clock, ScaledClock, VirtualClock
from evimae_stream.errors import DeviceError, InputError
from evimae_stream.health import StreamHealth, buffer_health
from evimae_stream.runtime.backends import Backend
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.events import end_event, start_event
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.runtime.labelling import LabelSetup, labelled
from evimae_stream.runtime.live import LiveRun
from evimae_stream.runtime.max_speed import run_replay_max
from evimae_stream.runtime.outputs import Outputs
from evimae_stream.runtime.recognizer import Recognizer, StageHook
from evimae_stream.runtime.recorder import GateRecorder
from evimae_stream.runtime.rig import Rig, build_rig
from evimae_stream.runtime.sinks import JsonlSink, TerminalLine
from evimae_stream.sessions.playback import ReplaySource
from evimae_stream.streams import StreamSpec

log = logging.getLogger(__name__)

_NS = 1_000_000_000


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: the module, its input contract, an id for the engine caches, and
    how it was named (``path`` as given and ``variant``, for the start event)."""

    model: Any
    spec: ModelSpec
    model_id: str = "model"
    path: str = ""
    variant: str = ""
    #: ``--vocabulary``: a :class:`~evimae_stream.language.scorer.LanguageScorer`
    language: Any = None
    #: the artifact's :class:`~evimae_stream.artifact.ModelMeta` (the GUI's vocabulary editor)
    meta: Any = None


@dataclass(frozen=True)
class OutputConfig:
    """Where a run's predictions go besides the hooks' sinks.

    ``jsonl``: a file or ``-`` (stdout) for the JSON Lines events; ``status_line``: the live
    line on stderr (never at max speed, which has the ``progress`` bar instead); ``truth``:
    score a labelled replay (each prediction carries its window's ground truth); ``lsl``,
    ``lsl_sensors``: publish the predictions, the aligned sensors, as LSL outlets
    (:mod:`evimae_stream.runtime.lsl_sinks`; live and paced runs).
    """

    jsonl: str | None = None
    status_line: bool = False
    progress: bool = False
    truth: bool = False
    lsl: bool = False
    lsl_sensors: bool = False


@dataclass
class Hooks:
    """A run's explicit extension points.

    ``sinks``: extra sinks (``emit(prediction)``), after the configured ones, that receive every
    prediction from the emitting thread. ``on_stage``: the stage-timing hook
    (``fn(event, window index)``, see :mod:`evimae_stream.runtime.recognizer`). ``speed``: the
    host clock's current speed, read at every emission, so latencies are wall milliseconds
    while a user changes the pace (the monitor's replay); None uses the run's fixed speed.
    ``segments``: the ``--segments`` segmenter (:mod:`evimae_stream.runtime.segmenter`; the run's
    backend must be its embedding backend): its feature recorder joins the sinks, its events go
    to the JSONL, and it is closed and summarised with the run.
    """

    sinks: Sequence[Any] = ()
    on_stage: StageHook | None = None
    speed: Callable[[], float] | None = None
    segments: Any = None


@dataclass
class RunResult:
    """What a finished run leaves: its outputs (predictions and statistics), the health of
    every stream at the end, and the summary of both."""

    outputs: Outputs
    health: dict[str, StreamHealth]
    summary: dict
    live: LiveRun | None = None


@dataclass
class _Emitters:
    """The configured sinks of one run and the :class:`Outputs` over them."""

    outputs: Outputs
    jsonl: JsonlSink | None = None
    status: TerminalLine | None = None
    outlets: list = field(default_factory=list)
    closed: bool = field(default=False)

    def close(self, summary: dict | None) -> None:
        """Close the status line, write the end event (when the run finished) and close."""
        if self.closed:
            return
        self.closed = True
        if self.status is not None:
            self.status.close()
        for outlet in self.outlets:
            outlet.close()
        if self.jsonl is not None:
            if summary is not None:
                self.jsonl.write(end_event(summary))
            self.jsonl.close()


def make_drivers(plan, imu_sinks: Mapping, frame_sink) -> dict:
    """The (not started) drivers of a live :class:`~drivers.factory.SourcePlan` feeding the
    given sinks, the camera too (the driver factory's)."""
    from drivers.factory import make_drivers as build

    return build(plan, imu_sinks, frame_sink)


def plan_sources(imu_ports: Sequence[str] | None, camera: str | None):
    """The :class:`~drivers.factory.SourcePlan` of ``--imu-ports`` and ``--camera``."""
    from drivers.factory import plan_sources as plan

    return plan(imu_ports, camera)


class Composer:
    """Builds and runs recognition runs of one model under one :class:`RuntimeConfig` (see the
    module doc). ``backend``: an already prepared backend (else chosen on the first window)."""

    def __init__(
        self,
        model: LoadedModel,
        config: RuntimeConfig,
        hooks: Hooks | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.hooks = hooks or Hooks()
        self.recognizer = Recognizer(
            model.model, model.spec, config, model.model_id, backend, self.hooks.on_stage,
            model_name=model.path, language=model.language,
        )  # fmt: skip

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    # -- parts ---------------------------------------------------------------------------------
    def rig(
        self,
        streams: StreamSpec,
        origin_ns: int,
        start_ns: int | None = None,
        recorder=None,
        clock=None,
    ) -> Rig:
        """The rings and gates for ``streams`` with the run's origin; ``clock``: what the rings
        read (default: a virtual clock the scheduler sets to each tick)."""
        clock = VirtualClock(origin_ns) if clock is None else clock
        return build_rig(
            self.spec, streams, clock, origin_ns, start_ns, recorder, self.config.stale_after_s
        )

    def outputs(self, sinks: Sequence = (), timings: bool = True, truth=None) -> Outputs:
        """Outputs over ``sinks`` and the hooks' sinks (``timings``: wall-clock stage times)."""
        seg = [] if self.hooks.segments is None else [self.hooks.segments.recorder]
        return Outputs(
            [*sinks, *self.hooks.sinks, *seg], timings=timings, truth=truth, speed=self.hooks.speed
        )

    def live_run(
        self,
        rig: Rig,
        outputs: Outputs,
        host_clock: Clock = time.monotonic_ns,
        speed: float = 1.0,
        status=None,
    ) -> LiveRun:
        """The scheduler and inference threads over ``rig`` (started by ``run(stop_when)``)."""
        return LiveRun(
            rig.buffer, rig.gates, rig.clock, self.recognizer, outputs, rig.origin_ns,
            host_clock=host_clock, status=status, speed=speed, start_ns=rig.start_ns,
        )  # fmt: skip

    def _emitters(
        self, out: OutputConfig, timings: bool, truth, source: str, rig=None, host_clock=None
    ) -> _Emitters:
        sinks: list = []
        jsonl = status = None
        outlets = self._outlets(out, rig, host_clock)
        if out.jsonl:
            jsonl = JsonlSink(out.jsonl, timings=timings, truth=truth is not None)
            sinks.append(jsonl)
            if self.hooks.segments is not None:
                self.hooks.segments.writers.append(jsonl.emit)
        if out.status_line:
            status = TerminalLine()
            sinks.append(status)
        em = _Emitters(self.outputs([*sinks, *outlets], timings, truth), jsonl, status, outlets)
        if jsonl is not None:
            m, spec = self.model, self.spec
            vocab = m.language.vocabulary.describe() if m.language is not None else None
            jsonl.write(
                start_event(
                    m.path, m.variant, self.recognizer.classes, spec.modes, self.config.stride_s,
                    spec.window_s, source, vocab, threads=self.recognizer.threads,
                )
            )  # fmt: skip
        return em

    def _outlets(self, out: OutputConfig, rig: Rig | None, host_clock) -> list:
        """The LSL outlets ``out`` asks for (sinks; need the rig and its host clock)."""
        if not (out.lsl or out.lsl_sensors):
            return []
        from evimae_stream.runtime.lsl_sinks import PredictionOutlets, SensorOutlets

        made: list = []
        if out.lsl:
            m = self.model
            about = {"model": m.path, "variant": m.variant, "window_s": self.spec.window_s}
            made.append(PredictionOutlets(about, self.spec.classes, self.config.stride_s))
        if out.lsl_sensors:
            made.append(SensorOutlets(rig.buffer, host_clock))
        return made

    def _finish(self, em: _Emitters, rig: Rig, drivers=None, live=None) -> RunResult:
        health = buffer_health(rig.buffer, drivers)
        streams = {name: h.summary() for name, h in health.items()}
        r = self.recognizer
        threads = {"count": r.threads, "why": r.threads_why}
        summary = em.outputs.summary(r.backend, streams, threads)
        if self.hooks.segments is not None:
            self.hooks.segments.finish()
            summary["segments"] = self.hooks.segments.summary()
        em.close(summary)
        return RunResult(em.outputs, health, summary, live)

    # -- whole runs ----------------------------------------------------------------------------
    def replay(
        self,
        session,
        speed: float | None,
        out: OutputConfig | None = None,
        *,
        skip_imus: tuple[str, ...] = (),
        camera: bool = True,
        overlap: bool = True,
        wrap_source=None,
    ) -> RunResult:
        """Replay the open ``session`` to its end (or the configured duration): at ``speed``×
        real time, or at max speed (None). At max speed the IMUs ``skip_imus`` and, without
        ``camera``, the camera are left out, ``overlap`` reads ahead in a thread and
        ``wrap_source`` may wrap the replay source."""
        out = out or OutputConfig()
        end_s = session.duration_s
        if self.config.duration_s is not None:
            end_s = min(end_s, self.config.duration_s)
        truth = self._truth(session) if out.truth else None
        streams = StreamSpec.from_session(session, skip_imus, camera)
        if speed is None:
            if out.lsl or out.lsl_sensors:
                raise InputError("--lsl publishes live and paced runs; use --speed 1 or N, not max")
            em = self._emitters(
                OutputConfig(out.jsonl, False, out.progress), False, truth, str(session.path)
            )
            with self._closing(em):
                origin = int(session.t0_ns or 0)
                clock = VirtualClock(origin)
                rig = self.rig(streams, origin, clock=clock)
                source = ReplaySource(session, rig.gates.imu, rig.gates.camera, t0_ns=origin)
                if wrap_source is not None:
                    source = wrap_source(source)
                run_replay_max(
                    source, rig.buffer, rig.gates, clock, self.recognizer, em.outputs, origin,
                    end_s, out.progress, overlap,
                )  # fmt: skip
                return self._finish(em, rig)
        return self._paced(session, speed, out, truth, streams, end_s)

    def _paced(self, session, speed: float, out, truth, streams, end_s: float) -> RunResult:
        """Session time runs ``speed``× faster than the wall: stamps, windows and the model see
        the data at its real rate; latency is reported in wall milliseconds."""
        from drivers.factory import make_replay_driver

        clock = ScaledClock(speed)
        origin = clock()
        rig = self.rig(streams, origin)
        em = self._emitters(out, True, truth, str(session.path), rig, clock)
        with self._closing(em):
            em.outputs.time_scale = speed
            driver = make_replay_driver(session, rig.gates.imu, rig.gates.camera, clock)
            live = self.live_run(rig, em.outputs, clock, speed, em.status)
            driver.start()
            ended_at: list[float] = []

            def stop_when() -> bool:
                now = time.monotonic()
                if (clock() - origin) / 1e9 >= end_s:
                    return True
                if not driver.running:
                    ended_at.append(now)
                    return now - ended_at[0] > 2 * self.config.stride_s
                return False

            try:
                live.run(stop_when)
            finally:
                driver.stop()
            return self._finish(em, rig, live=live)

    def live(
        self,
        plan,
        out: OutputConfig | None = None,
        record: Path | None = None,
        meta=None,
        labels: LabelSetup | None = None,
    ) -> RunResult:
        """Run the sensors of ``plan`` (a :class:`~drivers.factory.SourcePlan`) until the
        configured duration, until every driver has ended, or Ctrl-C; ``record``: also record
        them as a session there (``meta`` in its session.json); ``labels``: label the run
        (events to ``--jsonl``, segments to the recording's labels.csv)."""
        from drivers.factory import check_ports_free

        out = out or OutputConfig()
        streams = plan.streams(self.spec.imu_rate_hz)
        origin = time.monotonic_ns()
        recorder = None
        if record is not None:
            if (record / "session.json").exists():
                raise InputError(f"--record {record}: already holds a session; choose a new DIR")
            recorder = GateRecorder(record, origin, streams, meta)
        rig = self.rig(streams, origin, recorder=recorder)
        drivers = make_drivers(plan, rig.gates.imu, rig.gates.camera)
        try:
            check_ports_free(plan)
            for d in drivers.values():
                d.connect()  # a bad port, busy device or missing camera fails here, one line
        except DeviceError:
            _stop_all(drivers, raise_first=False)
            if recorder is not None:
                recorder.close()
            raise
        em = None
        try:
            self._camera_opened(drivers.get("camera"), rig, recorder)
            em = self._emitters(out, True, None, plan.source, rig, time.monotonic_ns)
            live = self.live_run(rig, em.outputs, status=em.status)
            with labelled(labels, time.monotonic_ns, origin, em.jsonl, record):
                self._run_drivers(live, drivers, origin)
        except BaseException:
            if em is not None:
                em.close(None)
            raise
        finally:
            _stop_all(drivers)
            rig.gates.release(None)  # what arrived after the last tick still goes to the recording
            if recorder is not None:
                recorder.close()
        return self._finish(em, rig, drivers, live)

    def _run_drivers(self, live: LiveRun, drivers: dict, origin: int) -> None:
        """Start the drivers and run until the end; Ctrl-C (the usual way to end a live run)
        stops cleanly."""
        duration = self.config.duration_s
        for d in drivers.values():
            d.start()

        def stop_when() -> bool:
            if duration is not None:
                return (time.monotonic_ns() - origin) / 1e9 >= duration
            return not any(d.running for d in drivers.values())

        try:
            live.run(stop_when)
        except KeyboardInterrupt:
            log.info("stopped by the user")

    @staticmethod
    def _camera_opened(cam, rig: Rig, recorder: GateRecorder | None) -> None:
        """The camera's own rate once open (files and devices differ; the synthetic one: 30)
        for its ring and the recording."""
        if cam is None:
            return
        fps = float(getattr(cam, "source_fps", None) or rig.buffer.camera.nominal_rate_hz)
        rig.buffer.camera.nominal_rate_hz = fps
        if recorder is not None:
            recorder.streams = recorder.streams.with_camera_fps(fps)

    def _truth(self, session) -> Callable:
        """The ground truth of a prediction's window from the session's labels."""
        from evimae_stream.truth import window_truth

        labels, window_s = session.labels, self.spec.window_s

        def truth(pred) -> str | None:
            t_end = pred.t_ref_s if pred.t_ref_s is not None else pred.t_s
            return window_truth(labels, t_end, window_s)

        return truth

    @staticmethod
    @contextlib.contextmanager
    def _closing(em: _Emitters):
        """Close the sinks when the run fails (a finished run closes them with its summary)."""
        try:
            yield em
        except BaseException:
            em.close(None)
            raise


def _stop_all(drivers: dict, raise_first: bool = True) -> None:
    """Stop every driver, even when one fails to stop (the first error is raised after, with
    ``raise_first``; else only logged)."""
    failed: list[BaseException] = []
    for d in drivers.values():
        try:
            d.stop()
        except Exception as exc:  # the others still stop
            log.warning("%s: stop failed: %s", getattr(d, "name", d), exc)
            failed.append(exc)
    if failed and raise_first:
        raise failed[0]
