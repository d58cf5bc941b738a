"""Ready-made monitor sources without a runtime: the live synthetic rig, and a paced replay.

``python -m gui`` and the tests build their :class:`~gui.local_source.LocalSource` here. Both are
real data paths: synthetic drivers stream the simulated wearer in real time exactly like
hardware; a replay feeds a recorded session through a :class:`~gui.paced.PacedReplay`.
"""

from __future__ import annotations

import os
import time

from drivers.synthetic import SyntheticRig
from evimae_stream.buffer import StreamBuffer
from evimae_stream.clock import Clock, ScaledClock
from evimae_stream.errors import InputError
from evimae_stream.sessions import Session, open_session
from evimae_stream.streams import StreamSpec
from evimae_stream.types import PLACEMENTS, Segment
from gui.local_source import LocalSource, display_buffer
from gui.paced import PacedReplay


def synthetic_plan(seed: int = 0, imu_rate_hz: float = 50.0, camera: bool = True):
    """The :class:`~drivers.factory.SourcePlan` of the simulated wearer ``seed``: four synthetic
    IMUs at ``imu_rate_hz`` and (``camera``) the synthetic head camera."""
    from drivers.factory import plan_sources

    rate = f"{imu_rate_hz:g}"
    ports = [f"{p}=synthetic?seed={seed}&rate={rate}" for p in PLACEMENTS]
    return plan_sources(ports, "synthetic" if camera else None)


def synthetic_source(
    seed: int = 0, imu_rate_hz: float = 50.0, camera: bool = True, **kwargs
) -> LocalSource:
    """Four synthetic IMUs and (``camera``) the synthetic head camera of one simulated wearer,
    not yet started. The ground-truth lane shows the wearer's script (the simulation knows
    what the person does). Extra keyword arguments go to :class:`LocalSource`."""
    from drivers.factory import make_drivers

    rig = SyntheticRig.shared(seed)
    wearer = rig.wearer(imu_rate_hz)
    plan = synthetic_plan(seed, imu_rate_hz, camera)
    streams = plan.streams(imu_rate_hz)
    # the wearer sends acc + gyro
    buffer = display_buffer(streams, imu_channels=len(wearer.channels))
    frame_sink = buffer.frame_sink() if camera else None
    drivers = make_drivers(plan, {p: buffer.imu_sink(p) for p in PLACEMENTS}, frame_sink)
    kwargs.setdefault("labels", [Segment(a, b, label) for a, b, label in wearer.script])
    kwargs.setdefault("classes", wearer.classes)
    kwargs.setdefault("timeline_t0_ns", rig.start_ns)
    return LocalSource(buffer, drivers, streams=streams, **kwargs)


def buffer_for(
    session: Session, streams: StreamSpec, clock: Clock = time.monotonic_ns
) -> StreamBuffer:
    """Rings for ``session``'s ``streams`` (its placements, rates, camera) with its channel
    count; ``clock``: the host clock their counters read (default: the wall clock)."""
    channels = {session.imu[p].values.shape[1] for p in streams.placements}
    if len(channels) > 1:
        raise InputError(
            f"{session.path}: IMU streams have different channel counts {sorted(channels)}; "
            "the monitor needs one count for every placement"
        )
    return display_buffer(streams, clock, channels.pop() if channels else 3)


def replay_source(path: str | os.PathLike | Session, speed: float = 1.0, **kwargs) -> LocalSource:
    """A paced replay of the session at ``path`` (any kind :func:`open_session` reads) at
    ``speed``×, not yet started; the ground-truth lane shows the session's labels. The rings
    are on the replay's :class:`~evimae_stream.clock.ScaledClock`, so they hold the session's own
    timing at any speed (rates, ages, and a recording made from the window, are real-time)."""
    session = path if isinstance(path, Session) else open_session(path)
    clock = ScaledClock(speed, paused=True)
    streams = StreamSpec.from_session(session)
    buffer = buffer_for(session, streams, clock)
    replay = PacedReplay(
        session,
        {p: buffer.imu_sink(p) for p in buffer.imu},
        buffer.frame_sink() if buffer.camera is not None else None,
        clock,
    )
    return LocalSource(buffer, replay=replay, streams=streams, **kwargs)


def synthetic_pipeline_source(
    model_dir: str | os.PathLike, seed: int = 0, imu_rate_hz: float = 50.0, camera: bool = True
) -> LocalSource:
    """The live synthetic rig recognised by the model artifact at ``model_dir`` through the
    runtime's pipeline (see :mod:`gui.runtime_source`), not yet started."""
    from gui.runtime_source import live_pipeline_source

    rig = SyntheticRig.shared(seed)
    wearer = rig.wearer(imu_rate_hz)
    return live_pipeline_source(
        model_dir,
        synthetic_plan(seed, imu_rate_hz, camera),
        origin_ns=rig.start_ns,  # the timeline is the rig's: the script is the ground truth
        labels=[Segment(a, b, label) for a, b, label in wearer.script],
    )
