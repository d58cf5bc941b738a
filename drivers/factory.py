"""Build the driver for a parsed IMU source config (serial, BLE or synthetic)."""

from __future__ import annotations

import time

from drivers.base import Driver
from drivers.config import BleImuConfig, ImuSourceConfig, SerialImuConfig, SyntheticImuConfig
from evimae_stream.clock import Clock
from evimae_stream.errors import DeviceError
from evimae_stream.sink import ImuSink


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
    if isinstance(config, SyntheticImuConfig):
        try:
            from drivers.synthetic import SyntheticImuDriver  # written on top of drivers.base
        except ImportError:
            raise DeviceError(
                f"{config.uri}: the synthetic IMU driver is not available in this build"
            ) from None
        return SyntheticImuDriver(config, sink, clock=clock)
    raise TypeError(f"not an IMU source config: {config!r}")
