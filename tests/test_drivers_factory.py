"""make_imu_driver: the right driver for each parsed source, wired to the sink."""

from __future__ import annotations

from drivers.ble_imu import BleImuDriver, BleLoop
from drivers.factory import make_imu_driver
from drivers.serial_imu import SerialImuDriver
from drivers.uri import parse_imu_ports
from tests.helpers.recording_sink import RecordingSink


def test_serial_and_ble_sources_get_their_drivers(monkeypatch):
    loop = BleLoop()
    monkeypatch.setattr(BleLoop, "_shared", loop)
    try:
        sources = parse_imu_ports(
            ["left_arm=/dev/ttyUSB0?protocol=witmotion", "right_leg=ble:AA:BB:CC:DD:EE:FF"]
        )
        sink = RecordingSink()
        serial_drv = make_imu_driver(sources["left_arm"], sink)
        ble_drv = make_imu_driver(sources["right_leg"], sink)
        assert isinstance(serial_drv, SerialImuDriver) and serial_drv.name == "left_arm"
        assert serial_drv.parser.name == "witmotion" and serial_drv.sink is sink
        assert isinstance(ble_drv, BleImuDriver) and ble_drv.name == "right_leg"
        assert ble_drv.parser.name == "nus"
        assert ble_drv.stats.state == "stopped"
    finally:
        loop.close()


def test_synthetic_source_gets_the_synthetic_driver():
    from drivers.synthetic import SyntheticImuDriver

    sources = parse_imu_ports(["synthetic?seed=1&rate=50", "synthetic?seed=1&rate=50"])
    drivers = [make_imu_driver(cfg, RecordingSink()) for cfg in sources.values()]
    assert all(isinstance(d, SyntheticImuDriver) for d in drivers)
    assert [d.placement for d in drivers] == ["left_arm", "right_arm"]
