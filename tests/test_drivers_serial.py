"""Serial IMU driver on real pseudo-terminals: streaming, garbage, unplug/replug, stop."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from drivers.base import LinkState
from drivers.config import BackoffConfig, SerialImuConfig
from drivers.protocols.text_lines import format_csv_line
from drivers.protocols.witmotion import ACC_SCALE, encode_serial_sample
from drivers.serial_imu import SerialImuDriver
from evimae_stream.errors import DeviceError
from tests.helpers.pty_device import PtyDevice
from tests.helpers.recording_sink import RecordingSink, wait_for

FAST = BackoffConfig(initial_s=0.05, max_s=0.4)


def acc_of(i: int) -> np.ndarray:
    """A deterministic 'motion' so every received sample can be checked by its index."""
    return np.array([np.sin(i / 7), np.cos(i / 5), 1.0 + 0.001 * (i % 100)])


def csv_bytes(i: int) -> bytes:
    return format_csv_line(acc_of(i), t_dev=i * 0.01).encode()


@pytest.fixture
def devices():
    made: list[PtyDevice] = []
    yield made
    for d in made:
        d.close()


def driver_for(link, protocol="csv", **kwargs) -> tuple[SerialImuDriver, RecordingSink]:
    sink = RecordingSink()
    cfg = SerialImuConfig(port=str(link), protocol=protocol, backoff=FAST, **kwargs)
    return SerialImuDriver(cfg, sink), sink


def test_csv_stream_at_100hz_delivers_every_sample_with_device_time(tmp_path, devices):
    dev = PtyDevice(tmp_path / "ttyIMU0", csv_bytes, rate_hz=100)
    devices.append(dev)
    drv, sink = driver_for(dev.link)
    drv.connect()
    drv.start()
    assert wait_for(lambda: len(sink.samples) >= 80, 5.0)
    stats = drv.stats
    drv.stop()
    assert not drv.running and drv.state is LinkState.STOPPED
    t_dev = np.array(sink.t_dev())
    idx = np.round(t_dev / 0.01).astype(int)
    # consecutive, no sample lost or repeated (the first may be a partial line, so start anywhere)
    assert (np.diff(idx) == 1).all()
    np.testing.assert_allclose(sink.values(), [acc_of(i) for i in idx], atol=1e-4)
    t_host = np.array([t for t, _, _ in sink.samples])
    assert (np.diff(t_host) >= 0).all()
    assert sink.kinds() == ["up"]
    assert stats.state == "up" and stats.samples >= 80 and stats.bad_frames <= 1
    assert stats.bytes >= 80 * len(csv_bytes(0)) - 40


def test_witmotion_garbage_and_bad_frames_are_counted_and_stream_continues(tmp_path, devices):
    def cycle(i: int) -> bytes:
        return encode_serial_sample(acc_of(i), gyro_dps=(10.0, 0.0, -10.0), t_s=i * 0.01)

    dev = PtyDevice(tmp_path / "ttyWT", cycle, rate_hz=100)
    devices.append(dev)
    drv, sink = driver_for(dev.link, protocol="witmotion")
    drv.start()
    assert wait_for(lambda: len(sink.samples) >= 10, 5.0)
    bad = bytearray(cycle(0))
    bad[21] ^= 0x5A  # the accel frame (after the time frame) gets a corrupted checksum
    dev.inject(b"\xde\xad\xbe\xef" + bytes(bad) + cycle(1)[:15])  # garbage, bad frame, truncated
    n = len(sink.samples)
    assert wait_for(lambda: len(sink.samples) >= n + 20, 5.0)
    drv.stop()
    stats = drv.stats
    assert stats.bad_checksum >= 1 and stats.bad_parse >= 1
    values = sink.values()
    t_dev = np.array(sink.t_dev(), dtype=float)
    idx = np.round(t_dev / 0.01).astype(int)
    np.testing.assert_allclose(values[:, :3], [acc_of(i) for i in idx], atol=ACC_SCALE)
    assert values.shape[1] == 6 and sink.kinds() == ["up"]


def test_unplug_marks_down_reconnects_with_backoff_and_comes_back(tmp_path, devices, caplog):
    caplog.set_level(logging.INFO, logger="drivers")
    dev = PtyDevice(tmp_path / "ttyUSB-by-id", csv_bytes, rate_hz=100)
    other = PtyDevice(tmp_path / "ttyOther", csv_bytes, rate_hz=50)
    devices += [dev, other]
    drv, sink = driver_for(dev.link)
    drv2, sink2 = driver_for(other.link)
    drv.start()
    drv2.start()
    assert wait_for(lambda: drv.state is LinkState.UP and drv2.state is LinkState.UP, 5.0)

    dev.unplug()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    n_other = len(sink2.samples)
    time.sleep(0.6)  # several reconnect attempts against a missing device node
    assert drv.stats.last_error and "ttyUSB-by-id" in drv.stats.last_error
    assert len(sink2.samples) > n_other + 10  # the other stream goes on meanwhile
    assert drv2.state is LinkState.UP

    n = len(sink.samples)
    dev.replug()
    assert wait_for(lambda: drv.state is LinkState.UP and len(sink.samples) > n + 20, 5.0)
    stats = drv.stats
    drv.stop()
    drv2.stop()
    assert stats.reconnects == 1
    kinds = sink.kinds()
    assert kinds == ["up", "down", "up"], kinds
    assert sink.events[1][1]  # a reason is given
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "ttyUSB" in r.message]
    assert len(warnings) == 1, [r.message for r in warnings]  # one warning per outage
    assert any("back up" in r.message for r in caplog.records)
    assert sink2.kinds() == ["up"]


def test_silent_port_is_treated_as_a_stall(tmp_path, devices):
    dev = PtyDevice(tmp_path / "ttySilent", csv_bytes, rate_hz=100)
    devices.append(dev)
    drv, sink = driver_for(dev.link, stall_timeout_s=0.3)
    drv.start()
    assert wait_for(lambda: drv.state is LinkState.UP, 3.0)
    dev._paused.set()  # the device stops talking but the port stays
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    assert "no data for 0.3 s" in (drv.stats.last_error or "")
    dev._paused.clear()
    assert wait_for(lambda: drv.state is LinkState.UP, 3.0)
    drv.stop()
    assert sink.kinds() == ["up", "down", "up"]


def test_csv_port_opened_mid_line_still_gets_every_later_sample(tmp_path, devices):
    """Item 16.1: the tail of a line cut by opening the port (here 4 fields before 7-field
    lines) must not fix the layout: every sample after it arrives."""

    def line(i: int) -> bytes:
        return format_csv_line(acc_of(i), gyro_dps=(90.0, 30.0, 10.0), t_dev=i * 0.01).encode()

    dev = PtyDevice(tmp_path / "ttyMid", line, rate_hz=100)
    devices.append(dev)
    dev._paused.set()
    drv, sink = driver_for(dev.link)
    drv.connect()
    dev.inject(b"00,30.00,10.00,1234\r\n")
    first = dev.sent
    dev._paused.clear()
    drv.start()
    assert wait_for(lambda: len(sink.samples) >= 60, 5.0), drv.stats
    drv.stop()
    idx = np.round(np.array(sink.t_dev()) / 0.01).astype(int)
    later = idx[idx >= first]
    assert later[0] == first and (np.diff(later) == 1).all()
    assert sink.values().shape[1] == 6 and drv.stats.bad_parse <= 1


def test_bytes_that_never_parse_say_so_in_the_stream_health(tmp_path, devices):
    """Item 16.1: a link that delivers bytes but no sample goes down with a reason saying so
    (not the "no data" of a silent port)."""
    dev = PtyDevice(tmp_path / "ttyNoise", lambda i: b"0.1 0.2\r\n", rate_hz=100)
    devices.append(dev)
    drv, sink = driver_for(dev.link, stall_timeout_s=0.3)
    drv.start()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    drv.stop()
    reason = sink.events[0][1] or ""
    assert sink.kinds()[0] == "down" and "bytes arrived but none parsed" in reason, reason
    assert "no data for 0.3 s" in reason


def test_connect_to_missing_port_raises_one_line_and_stop_is_prompt_while_retrying(tmp_path):
    cfg = SerialImuConfig(port=str(tmp_path / "ttyNope"), backoff=BackoffConfig(0.5, 5.0))
    sink = RecordingSink()
    drv = SerialImuDriver(cfg, sink)
    with pytest.raises(DeviceError, match=r"ttyNope.*cannot open") as info:
        drv.connect()
    assert "\n" not in str(info.value)
    drv.start()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    drv.stop(timeout_s=1.0)  # while sleeping in the backoff
    assert not drv.running
    assert sink.kinds() == ["down"]


def test_backoff_delays_grow_and_are_capped():
    delays = BackoffConfig(initial_s=0.2, max_s=5.0, factor=2.0).delays()
    got = [next(delays) for _ in range(8)]
    assert got == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_gyro_sensor_into_a_three_channel_ring_keeps_acceleration(tmp_path, devices):
    from evimae_stream.rings import ImuRing

    dev = PtyDevice(
        tmp_path / "ttyWT3",
        lambda i: encode_serial_sample(acc_of(i), gyro_dps=(50.0, 0.0, 0.0), t_s=i * 0.01),
        rate_hz=100,
    )
    devices.append(dev)
    ring = ImuRing("left_arm", capacity=500, channels=3, nominal_rate_hz=100.0)
    cfg = SerialImuConfig(port=str(dev.link), protocol="witmotion", backoff=FAST)
    drv = SerialImuDriver(cfg, ring)
    drv.start()
    assert wait_for(lambda: len(ring) >= 20, 5.0)
    drv.stop()
    snap = ring.snapshot()
    assert snap.values.shape[1] == 3
    assert ring.up and drv.stats.last_error is None
    assert np.abs(snap.values).max() < 2.0  # acceleration only, no 50 deg/s gyro values


def test_sensor_with_fewer_channels_than_the_ring_stops_with_a_clear_error(
    tmp_path, devices, caplog
):
    from evimae_stream.rings import ImuRing

    dev = PtyDevice(tmp_path / "ttyAcc", csv_bytes, rate_hz=100)
    devices.append(dev)
    ring = ImuRing("left_arm", capacity=100, channels=6, nominal_rate_hz=100.0)
    drv = SerialImuDriver(SerialImuConfig(port=str(dev.link), backoff=FAST), ring)
    drv.start()
    drv.join(5.0)
    assert not drv.running and drv.state is LinkState.DOWN
    assert "sends 3 values per sample but the stream expects 6" in drv.stats.last_error
    assert not ring.up and len(ring) == 0
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 1


def _indexed_witmotion(i: int) -> bytes:
    """A WitMotion cycle without a time frame (so the index clock maps it) whose x acceleration
    carries the sample number mod 1000 (in 0.01 g steps, far above the 0.5 mg resolution)."""
    return encode_serial_sample(((i % 1000) / 100, 0.0, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("lost", [0, 60], ids=["whole-backlog", "backlog-tail"])
def test_restarted_bursting_sender_recovers_within_seconds(tmp_path, devices, lost):
    """Item 16.2: a WitMotion sender without device time goes away for 2 s (its port too),
    comes back and bursts the backlog it kept (all 2 s of it, or its last 0.8 s), then streams
    on. The
    index clock must stand on the new arrivals within a few seconds, every burst sample is
    stored, and the stream's health never says "up" while its newest sample lags the host
    clock (it says "lagging" or "stale", or down while the port is gone)."""
    from evimae_stream.buffer import BufferConfig, StreamBuffer
    from evimae_stream.health import buffer_health

    rate = 50.0
    dev = PtyDevice(tmp_path / "ttyBurst", _indexed_witmotion, rate_hz=rate)
    devices.append(dev)
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False, imu_rate_hz=rate))
    ring = buf.imu["left_arm"]
    cfg = SerialImuConfig(port=str(dev.link), protocol="witmotion", backoff=FAST, rate_hz=rate)
    drv = SerialImuDriver(cfg, ring)
    seen: list[tuple[bool, float | None, str | None]] = []

    def health():
        h = buffer_health(buf, {"left_arm": drv})["left_arm"]
        seen.append((h.up, h.last_sample_age_s, h.reason))
        return h

    drv.start()
    try:
        assert wait_for(lambda: len(ring) >= 100 and health().up, 5.0), health().reason
        dev.unplug()
        assert wait_for(lambda: not health().up, 3.0)
        time.sleep(2.0)
        dev.replug(paused=True)
        time.sleep(1.0)  # the driver reopens the port (backoff at most 0.4 s), which it flushes
        kept = round(2.0 * rate) - lost
        n_before, first = len(ring), dev.sent + lost
        dev.burst(kept, skip=lost)  # sent with the next sample, once the sender resumes
        dev._paused.clear()
        t_back = time.monotonic()
        recovered = None
        deadline = t_back + 8.0
        while time.monotonic() < deadline:  # bounded: 8 s at most
            h = health()
            tail = ring.latest(25)  # the last half second
            on_time = len(tail.t_ns) == 25 and (tail.arrival_ns - tail.t_ns).max() < 30e6
            if h.up and on_time and len(ring) > n_before + kept:
                recovered = recovered or time.monotonic() - t_back
                if time.monotonic() - t_back > recovered + 1.0:
                    break  # and it stays so for a second
            else:
                recovered = None
            time.sleep(0.02)
    finally:
        drv.stop()
    assert recovered is not None and recovered < 3.0, f"not usable again: {seen[-1]}"
    # every sample of the burst is in the ring, in order
    snap = ring.snapshot()
    numbers = np.round(snap.values[:, 0] * 100).astype(int)
    burst = np.flatnonzero(numbers == first % 1000)
    assert len(burst) >= 1, "the burst's first sample is missing"
    start = int(burst[-1])
    np.testing.assert_array_equal(
        numbers[start : start + kept + 50], (first + np.arange(kept + 50)) % 1000
    )
    # health never called a stream "up" whose newest sample was more than a second old
    assert all(age is not None and age <= 1.0 for up, age, _ in seen if up), seen
    reasons = {r.split(":")[0] for up, _, r in seen if not up and r}
    assert reasons, seen


def test_a_stream_whose_bytes_stop_parsing_says_so_before_its_link_is_dropped(tmp_path, devices):
    """Item 16.2: a sender that comes back with another format (bytes arrive, none parses) is
    not "up" once its newest sample is stale (a second), and its health says why, long before
    the stall timeout (here 5 s) takes the link down."""
    from evimae_stream.buffer import BufferConfig, StreamBuffer
    from evimae_stream.health import buffer_health

    garbage = {"on": False}
    dev = PtyDevice(
        tmp_path / "ttyGarble",
        lambda i: b"0.1 0.2\r\n" if garbage["on"] else csv_bytes(i),
        rate_hz=100,
    )
    devices.append(dev)
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False, imu_rate_hz=100.0))
    cfg = SerialImuConfig(port=str(dev.link), backoff=FAST, stall_timeout_s=5.0)
    drv = SerialImuDriver(cfg, buf.imu["left_arm"])

    def health():
        return buffer_health(buf, {"left_arm": drv})["left_arm"]

    drv.start()
    try:
        assert wait_for(lambda: health().up and len(buf.imu["left_arm"]) > 50, 5.0)
        garbage["on"] = True
        t0 = time.monotonic()
        assert wait_for(lambda: not health().up, 3.0)
        took = time.monotonic() - t0
        assert wait_for(lambda: "none parsed" in (health().reason or ""), 1.0), health().reason
        h = health()
    finally:
        drv.stop()
    assert took < 2.0 and drv.stats.reconnects == 0
    assert h.reason.startswith("stale: no sample for") and "bytes arrived since" in h.reason
