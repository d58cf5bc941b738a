"""The driver factory: every driver of a run is made here, from typed source configs.

:func:`plan_sources` turns the ``--imu-ports`` / ``--camera`` options into a :class:`SourcePlan`
(parsed configs plus the :class:`~evimae_stream.streams.StreamSpec` they describe);
:func:`make_drivers` builds the (not started) drivers of a plan, the camera too;
:func:`make_replay_driver` a paced replay of a session. The runtime's composer
(:mod:`evimae_stream.runtime.run`) reaches drivers only through here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from drivers.base import Driver
from drivers.camera import CameraConfig, parse_camera_source
from drivers.config import (
    BleImuConfig,
    ImuSourceConfig,
    LslImuConfig,
    SerialImuConfig,
    SyntheticImuConfig,
)
from evimae_stream.clock import Clock
from evimae_stream.errors import DeviceError
from evimae_stream.sink import FrameSink, ImuSink
from evimae_stream.streams import DEFAULT_CAMERA_FPS, StreamSpec

#: the ``--camera`` value of the simulated wearer's head camera
SYNTHETIC_CAMERA = "synthetic"


@dataclass(frozen=True)
class SourcePlan:
    """What a live run reads: an IMU source config per placement and the camera (a
    :class:`~drivers.camera.CameraConfig`, :data:`SYNTHETIC_CAMERA`, or None); ``source``: how
    they were given (for the run's start event)."""

    imu: Mapping[str, ImuSourceConfig] = field(default_factory=dict)
    camera: CameraConfig | str | None = None
    source: str = ""

    def streams(self, default_rate_hz: float) -> StreamSpec:
        """The streams this plan reads; an IMU without a configured rate at
        ``default_rate_hz`` (the model's), the camera at :data:`DEFAULT_CAMERA_FPS` until it is
        open."""
        rates = {}
        for p, c in self.imu.items():
            rate = getattr(c, "rate_hz", None)
            rates[p] = float(rate) if rate else default_rate_hz
        cam = self.camera
        return StreamSpec(
            imu_rates=rates,
            imu_uris={p: getattr(c, "uri", "") or str(c) for p, c in self.imu.items()},
            camera_fps=None if cam is None else DEFAULT_CAMERA_FPS,
            camera_uri="" if cam is None else str(getattr(cam, "source", cam)),
        )


def plan_sources(imu_ports: Sequence[str] | None, camera: str | None) -> SourcePlan:
    """The :class:`SourcePlan` of ``--imu-ports`` items and a ``--camera`` value (InputError on
    bad ones)."""
    from drivers.uri import parse_imu_ports

    imu = parse_imu_ports(imu_ports) if imu_ports else {}
    cam: CameraConfig | str | None = None
    described = None
    if camera is not None:
        text = camera.strip()
        if text.lower() == SYNTHETIC_CAMERA:
            cam = described = SYNTHETIC_CAMERA
        else:
            described = parse_camera_source(text)
            cam = CameraConfig(described, fourcc="MJPG")
    source = " ".join([*(imu_ports or []), *([f"camera={described}"] if cam is not None else [])])
    return SourcePlan(imu, cam, source)


def make_imu_driver(
    config: ImuSourceConfig, sink: ImuSink, clock: Clock = time.monotonic_ns
) -> Driver:
    """The driver for ``config`` (from :func:`drivers.uri.parse_imu_ports`), not yet started."""
    if isinstance(config, SerialImuConfig):
        from drivers.serial_imu import SerialImuDriver

        return SerialImuDriver(config, sink, clock=clock)
    if isinstance(config, BleImuConfig):
        from drivers.ble_imu import BleImuDriver

        return BleImuDriver(config, sink, clock=clock)
    if isinstance(config, LslImuConfig):
        from drivers.lsl import LslImuDriver

        return LslImuDriver(config, sink, clock=clock)
    if isinstance(config, SyntheticImuConfig):
        try:
            from drivers.synthetic import SyntheticImuDriver  # written on top of drivers.base
        except ImportError:
            raise DeviceError(
                f"{config.uri}: the synthetic IMU driver is not available in this build"
            ) from None
        return SyntheticImuDriver(config, sink, clock=clock)
    raise TypeError(f"not an IMU source config: {config!r}")


def make_drivers(
    plan: SourcePlan, imu_sinks: Mapping[str, ImuSink], frame_sink: FrameSink | None
) -> dict[str, Driver]:
    """The (not started) drivers of ``plan``, keyed by stream name, feeding the given sinks.
    The synthetic camera films the wearer of the first synthetic IMU's seed (else seed 0)."""
    drivers: dict[str, Driver] = {p: make_imu_driver(c, imu_sinks[p]) for p, c in plan.imu.items()}
    if plan.camera == SYNTHETIC_CAMERA:
        from drivers.synthetic import SyntheticCameraDriver

        seeds = [c.seed for c in plan.imu.values() if isinstance(c, SyntheticImuConfig)]
        drivers["camera"] = SyntheticCameraDriver(frame_sink, seed=seeds[0] if seeds else 0)
    elif isinstance(plan.camera, CameraConfig):
        from drivers.camera import CameraDriver

        drivers["camera"] = CameraDriver(plan.camera, frame_sink)
    return drivers


def check_ports_free(plan: SourcePlan) -> None:
    """DeviceError when another program holds one of the plan's serial ports (POSIX)."""
    if sys.platform == "win32":
        return
    from drivers.serial_imu import check_port_free

    for c in plan.imu.values():
        if isinstance(c, SerialImuConfig):
            check_port_free(c.port)


def make_replay_driver(
    session, imu_sinks: Mapping[str, ImuSink], frame_sink: FrameSink | None, clock: Clock
) -> Driver:
    """A replay of ``session`` paced at real time on ``clock`` (a scaled clock plays it at N×),
    not yet started."""
    from drivers.replay import ReplayDriver

    return ReplayDriver(session, dict(imu_sinks), frame_sink, speed=1.0, clock=clock)
