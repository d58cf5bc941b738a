"""BLE IMU driver with a stand-in bleak client replaying realistic notifications."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest

from drivers.base import LinkState
from drivers.ble_imu import BleImuDriver, BleLoop
from drivers.config import BackoffConfig, BleImuConfig
from drivers.protocols.witmotion import ACC_SCALE, GYRO_SCALE
from tests.helpers.recording_sink import RecordingSink, wait_for
from tests.mocks.ble import FakeAdapter, FakePeripheral

FAST = BackoffConfig(initial_s=0.05, max_s=0.3)
ADDR1 = "C1:D2:E3:F4:A5:B6"
ADDR2 = "C1:D2:E3:F4:A5:B7"


@pytest.fixture
def ble_loop():
    loop = BleLoop()
    yield loop
    loop.close()


@pytest.fixture
def wear_acc(wear_dir) -> np.ndarray:
    """The first 4 s of a real WEAR right-wrist recording (Bangle.js, 50 Hz, g)."""
    with (wear_dir / "right_wrist_0_10.csv").open() as fh:
        rows = [r for _, r in zip(range(200), csv.reader(fh), strict=False)]
    return np.array([[float(r[2]), float(r[3]), float(r[4])] for r in rows])


def make_driver(adapter, ble_loop, address=ADDR1, protocol="nus", **kwargs):
    sink = RecordingSink()
    cfg = BleImuConfig(address=address, protocol=protocol, backoff=FAST, **kwargs)
    drv = BleImuDriver(cfg, sink, ble_loop=ble_loop, client_factory=adapter.client_factory)
    return drv, sink


def test_nus_replays_wear_bangle_data_batched_and_split(ble_loop, wear_acc):
    watch = FakePeripheral(ADDR1, "nus", acc=wear_acc, rate_hz=50, batch=5)
    drv, sink = make_driver(FakeAdapter(watch), ble_loop)
    drv.connect()
    drv.start()
    assert wait_for(lambda: len(sink.samples) >= 60, 5.0)
    stats = drv.stats
    drv.stop()
    n = len(sink.samples)
    t_dev = np.array(sink.t_dev())
    np.testing.assert_allclose(np.diff(t_dev), 0.02, atol=1e-9)  # consecutive watch samples
    first = round(t_dev[0] / 0.02)
    expected = wear_acc[np.arange(first, first + n) % len(wear_acc)]
    np.testing.assert_allclose(sink.values(), expected, atol=5e-4 + 1e-6)
    t_host = np.array([t for t, _, _ in sink.samples])
    assert (np.diff(t_host) >= 0).all()  # stamped on arrival, in arrival order
    assert stats.bad_frames == 0 and stats.state == "up" and sink.kinds() == ["up"]


def test_witmotion_ble_packets_decode_accel_and_gyro(ble_loop):
    acc = np.array([[0.1 * i, -1.0, 0.5] for i in range(20)])
    sensor = FakePeripheral(ADDR1, "witmotion", acc=acc, rate_hz=100, batch=4)
    drv, sink = make_driver(FakeAdapter(sensor), ble_loop, protocol="witmotion")
    drv.start()
    assert wait_for(lambda: len(sink.samples) >= 40, 5.0)
    drv.stop()
    values = sink.values()
    np.testing.assert_allclose(values[:40, :3], acc[np.arange(40) % 20], atol=ACC_SCALE)
    np.testing.assert_allclose(
        values[:40, 3:], [sensor.gyro(i) for i in range(40)], atol=GYRO_SCALE
    )


def test_disconnect_marks_down_and_reconnects(ble_loop, caplog):
    caplog.set_level(logging.INFO, logger="drivers")
    watch = FakePeripheral(ADDR1, "nus", rate_hz=50)
    drv, sink = make_driver(FakeAdapter(watch), ble_loop)
    drv.start()
    assert wait_for(lambda: drv.state is LinkState.UP, 5.0)
    watch.refuse_connects = 2  # the first reconnect attempts fail, then it works
    watch.drop_link()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    n = len(sink.samples)
    assert wait_for(lambda: drv.state is LinkState.UP and len(sink.samples) > n + 10, 5.0)
    stats = drv.stats
    drv.stop()
    assert watch.connects == 2 and watch.refuse_connects == 0
    assert stats.reconnects == 1 and "le-connection-abort" in (stats.last_error or "")
    assert sink.kinds() == ["up", "down", "up"]
    assert "disconnected" in sink.events[1][1]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and ADDR1 in warnings[0].message


def test_sensors_connect_one_after_another_and_one_loss_leaves_the_other(ble_loop):
    left = FakePeripheral(ADDR1, "nus", rate_hz=50, connect_delay_s=0.15)
    right = FakePeripheral(ADDR2, "witmotion", rate_hz=50, connect_delay_s=0.15)
    adapter = FakeAdapter(left, right)
    d1, _s1 = make_driver(adapter, ble_loop, ADDR1, "nus")
    d2, s2 = make_driver(adapter, ble_loop, ADDR2, "witmotion")
    d1.start()
    d2.start()
    assert wait_for(lambda: d1.state is LinkState.UP and d2.state is LinkState.UP, 5.0)
    assert adapter.max_concurrent_connects == 1
    assert sorted(adapter.connect_order) == [ADDR1, ADDR2]
    left.in_range = False
    left.drop_link()
    assert wait_for(lambda: d1.state is LinkState.DOWN, 3.0)
    n2 = len(s2.samples)
    assert wait_for(lambda: len(s2.samples) > n2 + 10, 3.0)
    assert d2.state is LinkState.UP
    assert "not found" in (d1.stats.last_error or "")
    d1.stop()
    d2.stop()
    assert s2.kinds() == ["up"]


def test_missing_sensor_connect_raises_and_stop_is_prompt_while_connecting(ble_loop):
    slow = FakePeripheral(ADDR1, "nus", connect_delay_s=30.0)
    adapter = FakeAdapter(slow)
    drv, _ = make_driver(FakeAdapter(), ble_loop, ADDR2)
    from evimae_stream.errors import DeviceError

    with pytest.raises(DeviceError, match=ADDR2):
        drv.connect()
    hanging, _ = make_driver(adapter, ble_loop, ADDR1)
    hanging.start()
    assert wait_for(lambda: adapter.connecting == 1, 3.0)
    hanging.stop(timeout_s=1.0)
    assert not hanging.running


def test_wrong_characteristic_is_a_clear_error(ble_loop):
    # a WitMotion sensor addressed as nus: no NUS notify characteristic
    sensor = FakePeripheral(ADDR1, "witmotion")
    drv, _ = make_driver(FakeAdapter(sensor), ble_loop, ADDR1, "nus")
    from evimae_stream.errors import DeviceError

    with pytest.raises(DeviceError, match="6e400003"):
        drv.connect()
