"""The monitor over the streaming runtime's pipeline (``evimae_stream.runtime``).

The runtime feeds its rings through tick gates: samples enter the rings only at each window tick
(every 0.5 s), and frames are shrunk to the model's input size on the way. That is right for
inference and wrong for a monitor (video at 2 fps, plots that jump). So the drivers push into a
:class:`TeeImuSink`/:class:`TeeFrameSink` that hands every sample both to the runtime's gate and,
immediately and at full resolution, to a separate *display* :class:`StreamBuffer` the window
reads. The pipeline (:class:`~evimae_stream.runtime.pipeline.LiveRun`) runs in the source's
worker thread and emits its predictions to the :class:`~gui.source.LocalSource`, which is a
runtime sink (``emit``).

:func:`pipeline_source` builds all of it for a model artifact and a set of sensors (what
``python -m gui --model DIR`` runs); ``evimae-stream --gui`` can do the same with its own rig.
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
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from drivers.base import Driver
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import Clock, ScaledClock, VirtualClock
from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS
from gui.paced import PacedReplay
from gui.recording import new_session_dir
from gui.source import MAX_SPEED, LocalSource

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
    :class:`~evimae_stream.runtime.recorder.Recorder` and back to nothing.

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
    """One recording through the gates: what :meth:`LocalSource.start_recording` holds."""

    def __init__(self, switch: RecorderSwitch, recorder) -> None:
        self.switch = switch
        self.recorder = recorder
        self.path = recorder.path

    def close(self) -> None:
        """Detach, then finish the session (blocks: the source calls it off the GUI thread)."""
        if self.switch.target is self.recorder:
            self.switch.target = None
        self.recorder.close()


def gate_recorder_factory(
    switch: RecorderSwitch,
    clock: Clock,
    imu_rates: Mapping[str, float],
    imu_sources: Mapping[str, str],
    camera: tuple[float, str] | None,
    meta: dict | None = None,
) -> Callable[[StreamBuffer, Path], _GateRecording]:
    """A ``recorder_factory`` for :class:`LocalSource` that records what the sensors sent
    (raw stamps, device time, gyro, full frames) with the runtime's own recorder, from now on."""
    from evimae_stream.runtime.recorder import Recorder

    def start(_buffer: StreamBuffer, folder: Path) -> _GateRecording:
        if switch.target is not None:
            raise InputError("already recording; stop that first")
        t0 = int(clock())
        rec = Recorder(
            new_session_dir(folder), t0, dict(imu_rates), dict(imu_sources), camera, meta
        )
        switch.t0_ns = t0
        switch.target = rec
        return _GateRecording(switch, rec)

    return start


def display_buffer(
    imu_rates: Mapping[str, float],
    camera_fps: float | None,
    host_clock: Clock = time.monotonic_ns,
) -> StreamBuffer:
    """Rings for the window: the rig's placements at their rates, acceleration only, on the
    pipeline's host clock (so rates and ages read in session time during a paced replay)."""
    placements = tuple(p for p in PLACEMENTS if p in imu_rates)
    return StreamBuffer(
        BufferConfig(
            placements=placements,
            imu_channels=3,
            imu_rate_hz={p: float(imu_rates[p]) for p in placements},
            camera=camera_fps is not None,
            camera_fps=camera_fps or 30.0,
        ),
        clock=host_clock,
    )


class ModelRig:
    """The runtime's rings (``buffer``), the gates in front of them and the tick clock the
    buffer reads, with the host time ``origin_ns`` of 0 s on the pipeline's timeline and the
    host time ``start_ns`` its data starts at (after a seek: the seek's target), before which it
    has no windows."""

    def __init__(
        self, buffer: StreamBuffer, gates, tick_clock, origin_ns: int, start_ns: int | None = None
    ) -> None:
        self.buffer = buffer
        self.gates = gates
        self.tick_clock = tick_clock
        self.origin_ns = int(origin_ns)
        self.start_ns = self.origin_ns if start_ns is None else int(start_ns)


class RigSwitch:
    """Which :class:`ModelRig` the tee sinks feed and the pipeline windows: one for a live rig;
    a fresh one after every seek of a paced replay.

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
        rig: ModelRig,
        imu_tees: Mapping[str, TeeImuSink],
        frame_tee: TeeFrameSink | None,
    ) -> None:
        self.current = rig
        self.imu_tees = dict(imu_tees)
        self.frame_tee = frame_tee
        self.renewals = 0

    def renew(self, rig: ModelRig) -> None:
        """Feed ``rig`` from now on (the caller holds off every driver that pushes)."""
        for placement, tee in self.imu_tees.items():
            tee.gate = rig.gates.imu[placement]
        if self.frame_tee is not None and rig.gates.camera is not None:
            self.frame_tee.gate = rig.gates.camera
        self.current = rig
        self.renewals += 1


class _RigSink:
    """A runtime sink that passes one run's predictions on while its rig is current."""

    def __init__(self, target, rigs: RigSwitch, rig: ModelRig) -> None:
        self.target = target
        self.rigs = rigs
        self.rig = rig

    def emit(self, pred) -> None:
        if self.rigs.current is self.rig:
            self.target.emit(pred)

    def close_sink(self) -> None:
        """Nothing to release (sink interface)."""


def pipeline_source(
    model_dir: str | Path,
    make_drivers: Callable[[Mapping[str, TeeImuSink], TeeFrameSink | None], dict[str, Driver]],
    imu_rates: Mapping[str, float],
    camera_fps: float | None,
    config=None,
    origin_ns: int | None = None,
    host_clock: Clock = time.monotonic_ns,
    **kwargs,
) -> LocalSource:
    """A :class:`LocalSource` running the runtime's pipeline on a model artifact.

    ``make_drivers(imu_sinks, frame_sink)`` builds the (not started) drivers for the rig from
    the tee sinks it is given, keyed by stream name. ``config``: a
    :class:`~evimae_stream.runtime.pipeline.RuntimeConfig` (default: stride 0.5 s, backend
    auto, top-5). ``origin_ns``: host time of 0 s on the pipeline's timeline (default: now);
    windows end at ``origin + k·stride``. ``host_clock``: the pipeline's host time (the
    :class:`~evimae_stream.clock.ScaledClock` of a paced replay). A driver under the key
    ``"replay"`` is the replay the window's controls act on; a :class:`~gui.paced.PacedReplay`
    there puts the pipeline on session time (``t_s`` = session seconds, ``origin_ns`` is
    ignored) and every seek starts the windows over (:class:`RigSwitch`). Latencies are wall
    milliseconds at the replay's current speed. Extra keyword arguments go to
    :class:`LocalSource` (``labels`` on that timeline, ...). The source's ``rigs`` attribute is
    the :class:`RigSwitch`.
    """
    from evimae_stream.artifact import load_artifact, model_hash
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.pipeline import (
        LiveRun,
        Outputs,
        Recognizer,
        RuntimeConfig,
        make_rig,
    )
    from evimae_stream.runtime.smoothing import Smoother

    model, meta = load_artifact(model_dir)
    spec = ModelSpec.from_meta(meta, model)
    config = config or RuntimeConfig(topk=5)  # the panel shows a top-5
    switch = RecorderSwitch()

    def build(origin: int, start_s: float = 0.0) -> ModelRig:
        tick_clock = VirtualClock(origin)
        buffer, gates = make_rig(
            spec, dict(imu_rates), camera_fps, tick_clock, switch,
            stale_after_s=config.stale_after_s,
        )  # fmt: skip
        return ModelRig(buffer, gates, tick_clock, origin, origin + round(start_s * 1e9))

    first = build(host_clock() if origin_ns is None else int(origin_ns))
    shown = display_buffer(imu_rates, camera_fps, host_clock)
    imu_sinks = {p: TeeImuSink(first.gates.imu[p], shown.imu[p]) for p in first.gates.imu}
    frame_sink = (
        TeeFrameSink(first.gates.camera, shown.camera)
        if first.gates.camera is not None and shown.camera is not None
        else None
    )
    rigs = RigSwitch(first, imu_sinks, frame_sink)
    drivers = make_drivers(imu_sinks, frame_sink)
    replay = drivers.pop("replay", None)
    if replay is not None:
        kwargs["replay"] = replay
    if isinstance(replay, PacedReplay):
        paced: PacedReplay = replay
        rigs.renew(build(paced.session_origin_ns()))
        paced.on_seek.append(lambda t_s: rigs.renew(build(paced.session_origin_ns(), t_s)))
    describe = {name: d.describe() for name, d in drivers.items()}
    if replay is not None:
        describe = dict.fromkeys([*imu_rates, "camera"], replay.describe())
    if "recorder_factory" not in kwargs:
        kwargs["recorder_factory"] = gate_recorder_factory(
            switch,
            host_clock,
            imu_rates,
            {p: describe[p] for p in imu_rates},
            None if camera_fps is None else (camera_fps, describe["camera"]),
            meta={"recorded_by": "evimae-stream gui", "model_classes": list(spec.classes)},
        )
    recognizer = Recognizer(model, spec, config, model_hash(model_dir))

    def backend_info() -> tuple[str, str]:
        b = recognizer.backend
        if b is None:
            return "choosing…", ""
        return f"{b.name} ({b.device.type})", b.precision

    class _WallOutputs(Outputs):
        """Latency in wall milliseconds at the host clock's current speed (a paced replay)."""

        def emit(self, pred, now_ns: int) -> None:
            self.time_scale = getattr(host_clock, "speed", 1.0)
            super().emit(pred, now_ns)

    source: LocalSource

    def speed_now() -> float:
        return getattr(host_clock, "speed", 1.0)

    def worker(stop) -> None:
        # one LiveRun per rig and speed: a seek (a new rig) ends this run and starts the next one
        # on fresh rings; a speed change starts the next one on the same rings (LiveRun cuts
        # windows a guard of 50 wall ms after each tick at the speed it started with)
        smoothed_on = None
        while not stop.is_set():
            rig, speed = rigs.current, speed_now()
            if rig is not smoothed_on:
                recognizer.smoother = Smoother(config.smooth)  # no mean across a seek
                smoothed_on = rig
            outputs = _WallOutputs([_RigSink(source, rigs, rig)], timings=True)
            LiveRun(
                rig.buffer, rig.gates, rig.tick_clock, recognizer, outputs, rig.origin_ns,
                host_clock=host_clock, speed=speed, start_ns=rig.start_ns,
            ).run(
                lambda rig=rig, speed=speed: (
                    stop.is_set() or rigs.current is not rig or speed_now() != speed
                )
            )  # fmt: skip

    kwargs.setdefault("classes", list(spec.classes))
    kwargs.setdefault("timeline_t0_ns", rigs.current.origin_ns)
    source = LocalSource(shown, drivers, worker=worker, backend_info=backend_info, **kwargs)
    source.rigs = rigs  # type: ignore[attr-defined]
    return source


def replay_pipeline_source(
    model_dir: str | Path, session, speed: float | None = 1.0, config=None, **kwargs
) -> LocalSource:
    """The runtime's pipeline on a paced replay of ``session`` (a path or an open
    :class:`~evimae_stream.sessions.Session`) at ``speed``× (None: :data:`~gui.source.MAX_SPEED`),
    not yet started: what ``evimae-stream --gui --replay`` runs. The timeline is the session's:
    predictions at session time, its labels as the ground-truth lane, "now" at the replay
    position. Extra keyword arguments go to :class:`LocalSource`."""
    from evimae_stream.sessions import Session, open_session

    if not isinstance(session, Session):
        session = open_session(session)
    rates = {p: s.rate_hz for p, s in session.imu.items()}
    camera_fps = session.video.fps if session.has_video else None
    clock = ScaledClock(MAX_SPEED if speed is None else float(speed), paused=True)

    def make_drivers(imu_sinks, frame_sink):
        return {"replay": PacedReplay(session, imu_sinks, frame_sink, clock)}

    kwargs.setdefault("labels", session.labels)
    return pipeline_source(
        model_dir, make_drivers, rates, camera_fps, config, host_clock=clock, **kwargs
    )
