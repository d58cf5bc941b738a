"""The monitor over the streaming runtime's pipeline (``evimae_stream.runtime``).

The runtime feeds its rings through tick gates: samples enter the rings only at each window tick
(every 0.5 s), and frames are shrunk to the model's input size on the way. That is right for
inference and wrong for a monitor (video at 2 fps, plots that jump). So the drivers push into a
:class:`TeeImuSink`/:class:`TeeFrameSink` that hands every sample both to the runtime's gate and,
immediately and at full resolution, to a separate *display* :class:`StreamBuffer` the window
reads. The runtime's composer (:class:`~evimae_stream.runtime.run.Composer`) builds the rig,
the drivers, the recogniser and the outputs; its live runs
(:class:`~evimae_stream.runtime.live.LiveRun`) run in the source's worker thread and emit the
predictions to the :class:`~gui.local_source.LocalSource`, which is a runtime sink (``emit``).

:func:`live_pipeline_source` builds all of it for a model artifact and a
:class:`~drivers.factory.SourcePlan` (what ``evimae-stream --gui`` with sensors and
``python -m gui --model DIR`` run).
Recording goes through the gates with the runtime's own recorder (:class:`RecorderSwitch`), so a
session recorded from the window holds exactly what the sensors sent, as ``--record`` writes it.

A replay (:func:`replay_pipeline_source`, what ``evimae-stream --gui --replay`` runs) is a
:class:`~gui.paced.PacedReplay`: the pipeline's origin is session time 0, so its ``t_s`` is session
time like the ground-truth lane and the replay position, through pauses and speed changes; a
seek starts the windows over on fresh rings (:class:`RigSwitch`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from evimae_stream.clock import Clock, ScaledClock
from evimae_stream.errors import InputError
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.runtime.labelling import Labeller
from evimae_stream.runtime.recorder import GateRecorder
from evimae_stream.runtime.rig import Rig
from evimae_stream.runtime.run import Composer, Hooks, LoadedModel, make_drivers
from evimae_stream.runtime.smoothing import Smoother
from evimae_stream.streams import StreamSpec
from gui.local_source import LocalSource, display_buffer
from gui.paced import PacedReplay
from gui.protocol import MAX_SPEED
from gui.recording import new_session_dir
from gui.vocabulary_editor import vocabulary_control

log = logging.getLogger(__name__)


class TeeImuSink:
    """An IMU sink that forwards to the runtime's gate and to a display ring.

    The gate gets every value the sensor sent; the display ring its first ``channels``."""

    def __init__(self, gate, display) -> None:
        self.gate = gate
        self.display = display

    def push(self, t_host_ns: int, values: np.ndarray, t_dev: float | None = None) -> None:
        self.gate.push(t_host_ns, values, t_dev)
        self.display.push(t_host_ns, np.asarray(values)[: self.display.channels], t_dev)

    def mark_down(self, reason: str) -> None:
        self.gate.mark_down(reason)
        self.display.mark_down(reason)

    def mark_up(self) -> None:
        self.gate.mark_up()
        self.display.mark_up()


class TeeFrameSink:
    """A frame sink that forwards to the runtime's gate and to the display camera ring."""

    def __init__(self, gate, display) -> None:
        self.gate = gate
        self.display = display

    def push_frame(self, t_host_ns: int, frame: np.ndarray) -> None:
        self.gate.push_frame(t_host_ns, frame)
        self.display.push_frame(t_host_ns, frame)

    def mark_down(self, reason: str) -> None:
        self.gate.mark_down(reason)
        self.display.mark_down(reason)

    def mark_up(self) -> None:
        self.gate.mark_up()
        self.display.mark_up()


class RecorderSwitch:
    """The recorder the runtime's gates always hold; the Record button points it at a
    :class:`~evimae_stream.runtime.recorder.GateRecorder` and back to nothing.

    Samples stamped before the recording started are not passed on, and a sample that races
    with closing (the writer raises ValueError once closed) is counted in ``late``, never
    raised into the scheduler thread."""

    def __init__(self) -> None:
        self.target = None
        self.t0_ns = 0
        self.late = 0

    def add_imu(self, placement: str, t_ns: int, values: np.ndarray, t_dev: float | None):
        rec = self.target
        if rec is not None and t_ns >= self.t0_ns:
            try:
                rec.add_imu(placement, t_ns, values, t_dev)
            except ValueError:
                self.late += 1

    def add_frame(self, t_ns: int, frame: np.ndarray) -> None:
        rec = self.target
        if rec is not None and t_ns >= self.t0_ns:
            try:
                rec.add_frame(t_ns, frame)
            except ValueError:
                self.late += 1


class _GateRecording:
    """One recording through the gates: what :meth:`LocalSource.start_recording` holds; its
    labels go to the session too while it records (``labeller``)."""

    def __init__(self, switch: RecorderSwitch, recorder, labeller: Labeller | None) -> None:
        self.switch = switch
        self.recorder = recorder
        self.path = recorder.path
        self.labeller = labeller

    def close(self) -> None:
        """Detach, then finish the session (blocks: the source calls it off the GUI thread)."""
        if self.labeller is not None:
            self.labeller.stop_recording()
        if self.switch.target is self.recorder:
            self.switch.target = None
        self.recorder.close()


def gate_recorder_factory(
    switch: RecorderSwitch,
    clock: Clock,
    streams: StreamSpec,
    meta: dict | None = None,
    labeller: Labeller | None = None,
) -> Callable[[Path], _GateRecording]:
    """A ``recorder_factory`` for :class:`LocalSource` that records what the sensors sent
    (raw stamps, device time, gyro, full frames) with the runtime's own
    :class:`~evimae_stream.runtime.recorder.GateRecorder`, from now on, and the ``labeller``'s
    segments into the session's labels.csv."""

    def start(folder: Path) -> _GateRecording:
        if switch.target is not None:
            raise InputError("already recording; stop that first")
        t0 = int(clock())
        rec = GateRecorder(new_session_dir(folder), t0, streams, meta)
        switch.t0_ns = t0
        switch.target = rec
        if labeller is not None:
            labeller.record_to(rec.path, t0)
        return _GateRecording(switch, rec, labeller)

    return start


class RigSwitch:
    """Which :class:`~evimae_stream.runtime.rig.Rig` the tee sinks feed and the pipeline
    windows: one for a live rig; a fresh one after every seek of a paced replay.

    The runtime's windows assume one continuous stretch of data. A seek ends it: the replay
    jumps in session time while host time goes on. :meth:`renew` (called by the replay under its
    lock, before the first sample after the seek is pushed) points the tees at the gates of new,
    empty rings whose origin is the host time of session time 0 under the replay's new mapping,
    so ``t_s`` stays session time and the first windows after the seek hold only data from after
    it (too little at first: no prediction, with the reason, until a whole window has played).
    The pipeline worker sees :attr:`current` change, stops its run (what that run still emits
    is dropped) and starts one on the new rings.
    """

    def __init__(
        self,
        rig: Rig,
        imu_tees: Mapping[str, TeeImuSink],
        frame_tee: TeeFrameSink | None,
    ) -> None:
        self.current = rig
        self.imu_tees = dict(imu_tees)
        self.frame_tee = frame_tee
        self.renewals = 0

    def renew(self, rig: Rig) -> None:
        """Feed ``rig`` from now on (the caller holds off every driver that pushes)."""
        for placement, tee in self.imu_tees.items():
            tee.gate = rig.gates.imu[placement]
        if self.frame_tee is not None and rig.gates.camera is not None:
            self.frame_tee.gate = rig.gates.camera
        self.current = rig
        self.renewals += 1


class _RigSink:
    """A runtime sink that passes one run's predictions on while its rig is current, and the
    source's count of skipped windows: ``skipped_before`` (earlier runs) plus this run's
    (``outputs``, set once they exist)."""

    def __init__(self, target, rigs: RigSwitch, rig: Rig) -> None:
        self.target = target
        self.rigs = rigs
        self.rig = rig
        self.outputs = None
        self.skipped_before = target.skipped

    def emit(self, pred) -> None:
        if self.rigs.current is self.rig:
            self.target.emit(pred)
            self.count_skipped()

    def count_skipped(self) -> None:
        if self.outputs is not None:
            self.target.skipped = self.skipped_before + self.outputs.skipped

    def close_sink(self) -> None:
        """Nothing to release (sink interface)."""


def live_pipeline_source(
    model_dir: str | Path,
    plan,
    config: RuntimeConfig | None = None,
    origin_ns: int | None = None,
    label_names: Sequence[str] | None = None,
    **kwargs,
) -> LocalSource:
    """The runtime's pipeline over the sensors of ``plan`` (a
    :class:`~drivers.factory.SourcePlan`), not yet started. ``origin_ns``: host time of 0 s on
    the pipeline's timeline (default: now); windows end at ``origin + k·stride``.
    ``label_names``: the label bar's actions (default: the model's classes). Extra keyword
    arguments go to :class:`LocalSource`."""
    composer = _composer(model_dir, config)
    streams = plan.streams(composer.spec.imu_rate_hz)

    def drivers(imu_sinks, frame_sink):
        return make_drivers(plan, imu_sinks, frame_sink)

    kwargs["label_names"] = list(label_names or composer.spec.classes)
    kwargs["rig"] = plan.source
    return _pipeline_source(composer, streams, drivers, origin_ns, time.monotonic_ns, kwargs)


def replay_pipeline_source(
    model_dir: str | Path, session, speed: float | None = 1.0, config=None, **kwargs
) -> LocalSource:
    """The runtime's pipeline on a paced replay of ``session`` (a path or an open
    :class:`~evimae_stream.sessions.Session`) at ``speed``× (None: :data:`~gui.protocol.MAX_SPEED`),
    not yet started: what ``evimae-stream --gui --replay`` runs. The timeline is the session's:
    predictions at session time, its labels as the ground-truth lane, "now" at the replay
    position; every seek starts the windows over (:class:`RigSwitch`). Extra keyword arguments
    go to :class:`LocalSource`."""
    from evimae_stream.sessions import Session, open_session

    if not isinstance(session, Session):
        session = open_session(session)
    clock = ScaledClock(MAX_SPEED if speed is None else float(speed), paused=True)

    def drivers(imu_sinks, frame_sink):
        return {"replay": PacedReplay(session, imu_sinks, frame_sink, clock)}

    kwargs.setdefault("labels", session.labels)
    composer = _composer(model_dir, config, speed=lambda: clock.speed)
    streams = StreamSpec.from_session(session)
    return _pipeline_source(composer, streams, drivers, None, clock, kwargs)


def _composer(model_dir: str | Path, config: RuntimeConfig | None, speed=None) -> Composer:
    """The runtime's composer for the artifact at ``model_dir``; ``speed``: the host clock's
    current speed (latencies in wall milliseconds at it)."""
    from evimae_stream.artifact import load_artifact, model_hash

    model, meta = load_artifact(model_dir)
    loaded = LoadedModel(model, ModelSpec.from_meta(meta), model_hash(model_dir), meta=meta)
    config = config or RuntimeConfig(topk=5)  # a top-5 panel
    hooks, backend = Hooks(speed=speed), None
    if meta.interval is not None and meta.interval.get("stride_s") == config.stride_s:
        from evimae_stream.runtime.segmenter import segmenter_for  # the timeline's segment lane

        hooks.segments, backend = segmenter_for(model_dir, loaded, meta)
    return Composer(loaded, config, hooks, backend=backend)


def _pipeline_source(
    composer: Composer,
    streams: StreamSpec,
    make_drivers_for: Callable[[Mapping[str, TeeImuSink], TeeFrameSink | None], dict],
    origin_ns: int | None,
    host_clock: Clock,
    kwargs: dict,
) -> LocalSource:
    """A :class:`LocalSource` over the composer's rigs, fed by the tees of the drivers that
    ``make_drivers_for(imu_sinks, frame_sink)`` builds. A driver under the key ``"replay"`` is
    the replay the window's controls act on; a :class:`~gui.paced.PacedReplay` there puts the
    pipeline on session time (``origin_ns`` is ignored). The source's ``rigs`` attribute is the
    :class:`RigSwitch`."""
    switch = RecorderSwitch()

    def build(origin: int, start_s: float = 0.0) -> Rig:
        return composer.rig(streams, origin, origin + round(start_s * 1e9), switch)

    first = build(host_clock() if origin_ns is None else int(origin_ns))
    shown = display_buffer(streams, host_clock)
    imu_sinks = {p: TeeImuSink(first.gates.imu[p], shown.imu[p]) for p in first.gates.imu}
    frame_sink = (
        TeeFrameSink(first.gates.camera, shown.camera)
        if first.gates.camera is not None and shown.camera is not None
        else None
    )
    rigs = RigSwitch(first, imu_sinks, frame_sink)
    drivers = make_drivers_for(imu_sinks, frame_sink)
    replay = drivers.pop("replay", None)
    if replay is not None:
        kwargs["replay"] = replay
    if isinstance(replay, PacedReplay):
        paced: PacedReplay = replay
        rigs.renew(build(paced.session_origin_ns()))
        paced.on_seek.append(lambda t_s: rigs.renew(build(paced.session_origin_ns(), t_s)))
    names, rig = kwargs.pop("label_names", None), kwargs.pop("rig", None)
    labeller = Labeller(names, host_clock, rigs.current.origin_ns) if names else None
    if "recorder_factory" not in kwargs:
        meta = {"recorded_by": "evimae-stream gui", "model_classes": list(composer.spec.classes)}
        if names:
            meta["label_names"] = list(names)
        if rig:
            meta["rig"] = rig
        kwargs["recorder_factory"] = gate_recorder_factory(
            switch, host_clock, _described(streams, drivers, replay), meta, labeller
        )
    kwargs.setdefault("classes", list(composer.spec.classes))
    kwargs.setdefault("timeline_t0_ns", rigs.current.origin_ns)
    source = LocalSource(
        shown, drivers, worker=_worker(composer, rigs, host_clock, lambda: source),
        backend_info=lambda: _backend_info(composer), labeller=labeller, **kwargs,
    )  # fmt: skip
    source.rigs = rigs  # type: ignore[attr-defined]
    source.vocabulary = vocabulary_control(composer)  # type: ignore[attr-defined]
    if composer.hooks.segments is not None:
        composer.hooks.segments.writers.append(source.emit_segment)
    return source


def _described(streams: StreamSpec, drivers: dict, replay) -> StreamSpec:
    """``streams`` with each stream's source as its driver describes it (what a recording
    made from the window names as its source)."""
    if replay is not None:
        text = replay.describe()
        return replace(streams, imu_uris=dict.fromkeys(streams.placements, text), camera_uri=text)
    return replace(
        streams,
        imu_uris={p: drivers[p].describe() for p in streams.placements},
        camera_uri=drivers["camera"].describe() if streams.camera else "",
    )


def _backend_info(composer: Composer) -> tuple[str, str]:
    b = composer.recognizer.backend
    if b is None:
        return "choosing…", ""
    return f"{b.name} ({b.device.type})", b.precision


def _worker(composer: Composer, rigs: RigSwitch, host_clock, source: Callable[[], LocalSource]):
    """The pipeline worker: one live run per rig and speed. A seek (a new rig) ends the run and
    starts the next one on fresh rings; a speed change starts the next one on the same rings (a
    live run cuts windows a guard of 50 wall ms after each tick at the speed it started with)."""

    def speed_now() -> float:
        return getattr(host_clock, "speed", 1.0)

    def work(stop) -> None:
        smoothed_on = None
        while not stop.is_set():
            rig, speed = rigs.current, speed_now()
            if rig is not smoothed_on:
                composer.recognizer.smoother = Smoother(composer.config.smooth)  # none across seeks
                smoothed_on = rig
            sink = _RigSink(source(), rigs, rig)
            outputs = sink.outputs = composer.outputs([sink], timings=True)
            composer.live_run(rig, outputs, host_clock, speed).run(
                lambda rig=rig, speed=speed: (
                    stop.is_set() or rigs.current is not rig or speed_now() != speed
                )
            )
            sink.count_skipped()

    return work
