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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from drivers.base import Driver
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS
from gui.recording import new_session_dir
from gui.source import LocalSource

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
    clock: Callable[[], int],
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


class _FnClock:
    """A host-time function (``time.monotonic_ns``, a ScaledClock) as a buffer clock."""

    def __init__(self, fn: Callable[[], int]) -> None:
        self.now_ns = fn


def display_buffer(
    imu_rates: Mapping[str, float],
    camera_fps: float | None,
    host_clock: Callable[[], int] = time.monotonic_ns,
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
        clock=_FnClock(host_clock),
    )


def pipeline_source(
    model_dir: str | Path,
    make_drivers: Callable[[Mapping[str, TeeImuSink], TeeFrameSink | None], dict[str, Driver]],
    imu_rates: Mapping[str, float],
    camera_fps: float | None,
    config=None,
    origin_ns: int | None = None,
    host_clock: Callable[[], int] = time.monotonic_ns,
    **kwargs,
) -> LocalSource:
    """A :class:`LocalSource` running the runtime's pipeline on a model artifact.

    ``make_drivers(imu_sinks, frame_sink)`` builds the (not started) drivers for the rig from
    the tee sinks it is given, keyed by stream name. ``config``: a
    :class:`~evimae_stream.runtime.pipeline.RuntimeConfig` (default: stride 0.5 s, backend
    auto, top-5). ``origin_ns``: host time of 0 s on the pipeline's timeline (default: now);
    windows end at ``origin + k·stride``. ``host_clock``: the pipeline's host time (a
    :class:`~evimae_stream.runtime.scheduler.ScaledClock` for a paced replay). A driver under the
    key ``"replay"`` is the replay the window's controls act on. Extra keyword arguments go to
    :class:`LocalSource` (``labels`` on that timeline, ...).
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
    from evimae_stream.runtime.scheduler import TickClock

    model, meta = load_artifact(model_dir)
    spec = ModelSpec.from_meta(meta, model)
    config = config or RuntimeConfig(topk=5)  # the panel shows a top-5
    origin = host_clock() if origin_ns is None else int(origin_ns)
    tick_clock = TickClock(origin)
    switch = RecorderSwitch()
    buffer, gates = make_rig(
        spec, dict(imu_rates), camera_fps, tick_clock, switch, stale_after_s=config.stale_after_s
    )
    shown = display_buffer(imu_rates, camera_fps, host_clock)
    imu_sinks = {p: TeeImuSink(gates.imu[p], shown.imu[p]) for p in gates.imu}
    frame_sink = (
        TeeFrameSink(gates.camera, shown.camera)
        if gates.camera is not None and shown.camera is not None
        else None
    )
    drivers = make_drivers(imu_sinks, frame_sink)
    replay = drivers.pop("replay", None)
    if replay is not None:
        kwargs["replay"] = replay
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

    source: LocalSource

    def worker(stop) -> None:
        outputs = Outputs([source], timings=True)
        speed = getattr(host_clock, "speed", 1.0)
        LiveRun(
            buffer, gates, tick_clock, recognizer, outputs, origin, host_clock=host_clock,
            speed=speed,
        ).run(stop.is_set)  # fmt: skip

    kwargs.setdefault("classes", list(spec.classes))
    kwargs.setdefault("timeline_t0_ns", origin)
    source = LocalSource(shown, drivers, worker=worker, backend_info=backend_info, **kwargs)
    return source
