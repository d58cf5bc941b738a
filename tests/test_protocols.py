"""Protocol parsers: encoders -> bytes -> parsers round trips, resync after garbage, counters."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.protocols import (
    CsvParser,
    NusParser,
    TextFormat,
    WitmotionBleParser,
    WitmotionSerialParser,
    make_parser,
)
from drivers.protocols.text_lines import LAYOUT_RUN, MAX_LINE_BYTES, encode_csv, encode_nus
from drivers.protocols.witmotion import (
    ACC_SCALE,
    ANGLE_SCALE,
    GYRO_SCALE,
    TYPE_ACC,
    encode_ble_packet,
    encode_serial_frame,
    encode_serial_sample,
)
from evimae_stream.errors import InputError


def feed_in_chunks(parser, data: bytes, sizes) -> list:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out += parser.feed(data[i : i + n])
        i += n
        k += 1
    return out


def motion(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    acc = rng.uniform(-7.9, 7.9, (n, 3))
    gyro = rng.uniform(-1900, 1900, (n, 3))
    angle = rng.uniform(-179, 179, (n, 3))
    return acc, gyro, angle


# ---- WitMotion serial ------------------------------------------------------------------------
def test_witmotion_serial_round_trip_any_split():
    acc, gyro, angle = motion(40)
    t = 3600 * 13 + 61.5 + np.arange(40) * 0.01
    data = b"".join(
        encode_serial_sample(acc[i], gyro[i], angle[i], t_s=float(t[i])) for i in range(40)
    )
    parser = WitmotionSerialParser()
    out = feed_in_chunks(parser, data, [1, 7, 3, 30, 11, 2])
    assert len(out) == 40
    got = np.array([s.values for s in out])
    np.testing.assert_allclose(got[:, :3], acc, atol=ACC_SCALE)
    # accel comes before gyro in each cycle: sample k carries the gyro of cycle k-1
    np.testing.assert_allclose(got[0, 3:], 0.0)
    np.testing.assert_allclose(got[1:, 3:], gyro[:-1], atol=GYRO_SCALE)
    np.testing.assert_allclose(parser.angle_deg, angle[-1], atol=ANGLE_SCALE)
    np.testing.assert_allclose([s.t_dev for s in out], t, atol=1e-3)
    assert parser.counters.bad_frames == 0
    assert parser.counters.bytes == len(data) and parser.counters.samples == 40


def test_witmotion_serial_bad_checksum_and_truncated_frames_are_counted_and_skipped():
    acc, gyro, angle = motion(6, seed=1)
    cycles = [bytearray(encode_serial_sample(acc[i], gyro[i], angle[i])) for i in range(6)]
    cycles[1][10] ^= 0xFF  # corrupt the accel frame's checksum
    del cycles[3][4:9]  # truncated accel frame (bytes lost on the wire)
    data = b"\x00\x13garbage" + b"".join(bytes(c) for c in cycles)
    parser = WitmotionSerialParser()
    out = parser.feed(data)
    got = np.array([s.values[:3] for s in out])
    np.testing.assert_allclose(got, acc[[0, 2, 4, 5]], atol=ACC_SCALE)
    assert parser.counters.bad_checksum >= 1
    assert parser.counters.bad_parse >= 1


def test_witmotion_serial_skips_other_known_frame_types_silently():
    mag = encode_serial_frame(0x54, bytes(8))
    data = mag + encode_serial_sample([0.0, 0.0, 1.0]) + mag
    parser = WitmotionSerialParser()
    out = parser.feed(data)
    assert len(out) == 1 and out[0].values[2] == pytest.approx(1.0, abs=ACC_SCALE)
    assert parser.counters.bad_frames == 0


def test_witmotion_serial_frame_layout_matches_the_datasheet():
    # 1 g on z: raw = 32768/16 = 2048 = 0x0800 -> bytes 00 08; checksum over the first 10 bytes
    frame = encode_serial_frame(TYPE_ACC, bytes([0, 0, 0, 0, 0x00, 0x08, 0, 0]))
    assert frame[:2] == b"\x55\x51" and len(frame) == 11
    assert frame[10] == (0x55 + 0x51 + 0x08) & 0xFF
    (sample,) = WitmotionSerialParser().feed(frame)
    assert sample.values[:3].tolist() == [0.0, 0.0, 1.0]


# ---- WitMotion BLE ---------------------------------------------------------------------------
def test_witmotion_ble_concatenated_packets_register_replies_and_garbage():
    acc, gyro, angle = motion(10, seed=2)
    packets = [encode_ble_packet(acc[i], gyro[i], angle[i]) for i in range(10)]
    register_reply = b"\x55\x71" + bytes(18)
    data = b"\x01\x02" + b"".join(packets[:5]) + register_reply + b"".join(packets[5:])
    parser = WitmotionBleParser()
    out = feed_in_chunks(parser, data, [40, 3, 20, 61])  # several packets per notification
    got = np.array([s.values for s in out])
    np.testing.assert_allclose(got[:, :3], acc, atol=ACC_SCALE)
    np.testing.assert_allclose(got[:, 3:], gyro, atol=GYRO_SCALE)
    np.testing.assert_allclose(parser.angle_deg, angle[-1], atol=ANGLE_SCALE)
    assert all(s.t_dev is None for s in out)
    assert parser.counters.bad_parse == 1  # the two leading garbage bytes, one run


def test_witmotion_ble_packet_is_20_bytes_little_endian():
    packet = encode_ble_packet([1.0, -1.0, 0.0])
    assert len(packet) == 20 and packet[:2] == b"\x55\x61"
    assert packet[2:4] == (2048).to_bytes(2, "little") and packet[4:6] == b"\x00\xf8"


# ---- text lines ------------------------------------------------------------------------------
def test_csv_auto_layout_with_gyro_and_time_and_scales():
    acc, gyro, _ = motion(20, seed=3)
    t = 12.0 + np.arange(20) * 0.01
    data = b"# mpu6050 csv v1\r\n" + encode_csv(acc, t_dev=t, gyro=gyro)
    parser = CsvParser(TextFormat(gscale=2.0))
    out = feed_in_chunks(parser, data, [5, 64, 1, 13])
    got = np.array([s.values for s in out])
    np.testing.assert_allclose(got[:, :3], acc, atol=1e-4)
    np.testing.assert_allclose(got[:, 3:], gyro * 2.0, atol=0.02)
    np.testing.assert_allclose([s.t_dev for s in out], t, atol=1e-6)
    assert parser.channels == 6 and parser.counters.bad_frames == 0


def test_csv_column_map_skip_and_units():
    parser = CsvParser(TextFormat(cols=("t", "_", "ax", "ay", "az"), scale=1 / 4096, tunit="us"))
    out = parser.feed(b"1500000,7,4096,-2048,0\n2500000,8,0,0,4096\n")
    assert [s.t_dev for s in out] == [1.5, 2.5]
    np.testing.assert_allclose(out[0].values, [1.0, -0.5, 0.0])
    np.testing.assert_allclose(out[1].values, [0.0, 0.0, 1.0])


def test_csv_bad_lines_are_counted_and_layout_stays_fixed():
    parser = CsvParser()
    out = parser.feed(b"0.1,0.2,0.3,100\nax,ay,az,t\n0.1,0.2\n0.1,nan,0.3,120\n0.4,0.5,0.6,140\n")
    assert out == []  # two valid lines: the layout is not learned yet
    out = parser.feed(b"0.7,0.8,0.9,160\n")
    assert [s.t_dev for s in out] == [0.1, 0.14, 0.16]
    assert parser.counters.bad_parse == 3
    # after locking to 4 fields, a 3-field line is rejected rather than changing the layout
    assert parser.feed(b"1,2,3\n") == [] and parser.channels == 3


@pytest.mark.parametrize(
    "fragment", [b"00,30.00,10.00,1234", b"0.00,10.00,1234", b"1234", b"2,3,4,5,6,7"]
)
def test_csv_layout_relearned_after_a_mid_line_start(fragment):
    """Item 16.1: the leftover of a line cut by opening the port mid-line (3, 4 or 6 fields)
    must not fix the layout; the run of real 7-field lines after it does."""
    line = b"0.1234,0.2000,1.0000,90.00,30.00,10.00,1234\n"
    parser = CsvParser()
    out = parser.feed(fragment + b"\n" + line * 5)
    assert len(out) == 5 and parser.channels == 6
    np.testing.assert_allclose(out[-1].values, [0.1234, 0.2, 1.0, 90.0, 30.0, 10.0], rtol=1e-6)
    assert [s.t_dev for s in out] == [1.234] * 5
    assert parser.counters.bad_parse <= 1


def test_csv_layout_relearned_on_reconnect():
    """Item 16.1: a reconnect (``reset``) learns the layout again: the sensor on the other end
    may now send another one."""
    parser = CsvParser()
    assert len(parser.feed(b"0.1,0.2,1.0,90,30,10,1234\n" * 4)) == 4 and parser.channels == 6
    parser.reset()
    out = parser.feed(b"0.1,0.2,1.0,1300\n" * 4)
    assert len(out) == 4 and parser.channels == 3 and out[0].t_dev == pytest.approx(1.3)


@pytest.mark.parametrize(
    ("make", "data"),
    [
        (CsvParser, b"1e39,0,1\n"),
        (CsvParser, b"0,0,1,-1e39,0,0\n"),
        (lambda: CsvParser(TextFormat(scale=1000)), b"1e36,0,1\n"),
        (lambda: CsvParser(TextFormat(gscale=1e3)), b"0,0,1,1e36,0,0\n"),
        (NusParser, b'{"x":1e39,"y":0,"z":1}\n'),
        (NusParser, b"1000,0,-1e39,1\n"),
    ],
)
def test_parsers_never_emit_inf_for_numbers_that_overflow_float32(make, data):
    """Item 16.20: finite in float64 but infinite in float32 is rejected and counted."""
    parser = make()
    good = data.replace(b"1e39", b"0.5").replace(b"1e36", b"0.0005")
    out = parser.feed(good * 2 + data + good * 2)
    assert len(out) == 4 and all(np.isfinite(s.values).all() for s in out)
    assert parser.counters.bad_parse == 1


def test_text_parser_drops_an_endless_line_and_recovers_at_the_next_newline():
    parser = CsvParser()
    assert parser.feed(b"x" * (MAX_LINE_BYTES + 10)) == []
    out = parser.feed(b"yyyy\n" + b"0.0,0.0,1.0\n" * LAYOUT_RUN)
    assert [s.values.tolist() for s in out] == [[0.0, 0.0, 1.0]] * LAYOUT_RUN
    assert parser.counters.bad_parse == 1


def test_nus_lines_split_across_notifications_and_batched():
    acc, _, _ = motion(25, seed=4)
    t_ms = 1000 + 20 * np.arange(25)
    data = encode_nus(acc, t_ms)
    parser = NusParser()
    out = feed_in_chunks(parser, data, [20])  # default BLE MTU: 20-byte notifications
    assert len(out) == 25
    np.testing.assert_allclose(np.array([s.values for s in out]), acc, atol=5e-4)
    np.testing.assert_allclose([s.t_dev for s in out], t_ms / 1000.0)


@pytest.mark.parametrize(
    ("data", "values", "t_dev"),
    [
        (b"1234,0.1,0.2,0.3\r\n", [0.1, 0.2, 0.3], 1.234),
        (b"1234;0.1;0.2;0.3\n", [0.1, 0.2, 0.3], 1.234),
        (b"1234 0.1 0.2 0.3\n", [0.1, 0.2, 0.3], 1.234),
        (b"0.1,0.2,0.3\n", [0.1, 0.2, 0.3], None),
        (b'{ "x": 0.1, "y": 0.2, "z": 0.3, "mag": 0.37, "diff": 0.01 }\n', [0.1, 0.2, 0.3], None),
        (b'{"t":1234,"x":0.1,"y":0.2,"z":0.3}\n', [0.1, 0.2, 0.3], 1.234),
    ],
)
def test_nus_accepts_common_variants(data, values, t_dev):
    out = NusParser().feed(data * LAYOUT_RUN)  # the layout is learned from a run of lines
    assert len(out) == LAYOUT_RUN
    for sample in out:
        np.testing.assert_allclose(sample.values, values, rtol=1e-6)
        assert sample.t_dev == (None if t_dev is None else pytest.approx(t_dev))


def test_nus_ignores_console_noise():
    parser = NusParser()
    out = parser.feed(b"\r\n>\r\n# evimae nus v1 50Hz\n=undefined\n" + b"10,0,0,1\n" * LAYOUT_RUN)
    assert len(out) == LAYOUT_RUN
    assert parser.counters.bad_parse == 2  # the prompt '>' and '=undefined'


def test_make_parser_picks_by_transport_and_protocol():
    assert isinstance(make_parser("serial", "csv"), CsvParser)
    assert isinstance(make_parser("serial", "witmotion"), WitmotionSerialParser)
    assert isinstance(make_parser("ble", "nus"), NusParser)
    assert isinstance(make_parser("ble", "witmotion"), WitmotionBleParser)
    with pytest.raises(InputError, match="unknown BLE protocol 'csv'; use one of nus, witmotion"):
        make_parser("ble", "csv")
