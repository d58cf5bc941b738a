"""WitMotion binary protocols: WT901 serial 11-byte frames and WT901BLE 20-byte packets.

Serial (WT901, WT61, ... over USB-UART): frames of 11 bytes ``0x55, type, d0..d7, checksum``
with ``type`` 0x50 time, 0x51 accel, 0x52 gyro, 0x53 angle (0x54–0x5A: magnetometer, pressure,
... — recognised and skipped); ``d`` = four little-endian int16; checksum = low byte of the sum of
the first 10 bytes. Scales: accel g = raw/32768·16, gyro deg/s = raw/32768·2000, angle deg =
raw/32768·180. One sample (accel + latest gyro, 6 values) is emitted per accel frame; when a time
frame (0x50: YY MM DD hh mm ss ms_lo ms_hi) arrived since the previous accel frame, its time of
day in seconds is the sample's ``t_dev``.

BLE (WT901BLECL, notify characteristic 0000ffe4-…): packets of 20 bytes ``0x55 0x61`` + 9 int16
LE = accel(3), gyro(3), angle(3), same scales, no checksum; a notification may carry several
packets. ``0x55 0x71`` register replies (20 bytes) are skipped.
"""

from __future__ import annotations

import struct

import numpy as np

from drivers.protocols.base import ImuSample, Protocol, StreamParser, register_protocol

ACC_SCALE = 16.0 / 32768.0
GYRO_SCALE = 2000.0 / 32768.0
ANGLE_SCALE = 180.0 / 32768.0

FRAME_LEN = 11
TYPE_TIME, TYPE_ACC, TYPE_GYRO, TYPE_ANGLE = 0x50, 0x51, 0x52, 0x53
_KNOWN_TYPES = frozenset(range(0x50, 0x5B))

BLE_PACKET_LEN = 20
BLE_NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
BLE_DATA, BLE_REGISTER = 0x61, 0x71

_FOUR = struct.Struct("<4h")
_NINE = struct.Struct("<9h")


class WitmotionSerialParser(StreamParser):
    """WT901 serial frames -> 6-value samples (accel g, gyro deg/s)."""

    name = "witmotion"

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        # gyro is 0 until the first gyro frame (WT901 sends accel before gyro in each cycle)
        self._gyro = np.zeros(3, dtype=np.float32)
        self._t_dev: float | None = None
        self.angle_deg = np.zeros(3, dtype=np.float32)

    @property
    def channels(self) -> int:
        return 6

    def reset(self) -> None:
        self._buf.clear()
        self._t_dev = None

    def _feed(self, data: bytes) -> list[ImuSample]:
        out: list[ImuSample] = []
        buf = self._buf
        buf += data
        i = 0
        n = len(buf)
        while True:
            j = buf.find(0x55, i)
            if j < 0:
                if n > i:
                    self.counters.bad_parse += 1
                i = n
                break
            if j > i:
                self.counters.bad_parse += 1  # one garbage run before a possible header
            i = j
            if n - i < 2:
                break
            kind = buf[i + 1]
            if kind not in _KNOWN_TYPES:
                i += 1
                self.counters.bad_parse += 1
                continue
            if n - i < FRAME_LEN:
                break
            if sum(buf[i : i + 10]) & 0xFF != buf[i + 10]:
                self.counters.bad_checksum += 1
                i += 1
                continue
            self._frame(kind, buf, i + 2, out)
            i += FRAME_LEN
        del buf[:i]
        return out

    def _frame(self, kind: int, buf: bytearray, at: int, out: list[ImuSample]) -> None:
        if kind == TYPE_TIME:
            _yy, _mo, _dd, hh, mm, ss, ms_lo, ms_hi = buf[at : at + 8]
            self._t_dev = hh * 3600 + mm * 60 + ss + (ms_lo | ms_hi << 8) / 1000.0
            return
        raw = np.array(_FOUR.unpack_from(buf, at)[:3], dtype=np.float32)
        if kind == TYPE_ACC:
            values = np.concatenate([raw * ACC_SCALE, self._gyro]).astype(np.float32)
            out.append(ImuSample(values, self._t_dev))
            self._t_dev = None
        elif kind == TYPE_GYRO:
            self._gyro = raw * GYRO_SCALE
        elif kind == TYPE_ANGLE:
            self.angle_deg = raw * ANGLE_SCALE


class WitmotionBleParser(StreamParser):
    """WT901BLE 20-byte ``0x55 0x61`` packets -> 6-value samples (accel g, gyro deg/s)."""

    name = "witmotion"

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self.angle_deg = np.zeros(3, dtype=np.float32)

    @property
    def channels(self) -> int:
        return 6

    def reset(self) -> None:
        self._buf.clear()

    def _feed(self, data: bytes) -> list[ImuSample]:
        out: list[ImuSample] = []
        buf = self._buf
        buf += data
        i = 0
        n = len(buf)
        while True:
            j = buf.find(0x55, i)
            if j < 0:
                if n > i:
                    self.counters.bad_parse += 1
                i = n
                break
            if j > i:
                self.counters.bad_parse += 1
            i = j
            if n - i < 2:
                break
            kind = buf[i + 1]
            if kind not in (BLE_DATA, BLE_REGISTER):
                self.counters.bad_parse += 1
                i += 1
                continue
            if n - i < BLE_PACKET_LEN:
                break
            if kind == BLE_DATA:
                raw = np.array(_NINE.unpack_from(buf, i + 2), dtype=np.float32)
                values = np.concatenate([raw[:3] * ACC_SCALE, raw[3:6] * GYRO_SCALE])
                self.angle_deg = raw[6:] * ANGLE_SCALE
                out.append(ImuSample(values.astype(np.float32), None))
            i += BLE_PACKET_LEN
        del buf[:i]
        return out


def _int16(values, scale: float) -> list[int]:
    return [int(np.clip(round(float(v) / scale), -32768, 32767)) for v in values]


def encode_serial_frame(kind: int, payload8: bytes) -> bytes:
    """One 11-byte frame with its checksum."""
    head = bytes([0x55, kind]) + payload8
    return head + bytes([sum(head) & 0xFF])


def encode_serial_sample(
    acc_g, gyro_dps=(0.0, 0.0, 0.0), angle_deg=(0.0, 0.0, 0.0), t_s: float | None = None
) -> bytes:
    """One WT901 output cycle: [time], accel, gyro, angle frames (as the sensor sends them)."""
    out = b""
    if t_s is not None:
        ms_total = round(t_s * 1000) % 86_400_000
        sec, ms = divmod(ms_total, 1000)
        hh, rem = divmod(sec, 3600)
        mm, ss = divmod(rem, 60)
        out += encode_serial_frame(TYPE_TIME, bytes([24, 1, 1, hh, mm, ss, ms & 0xFF, ms >> 8]))
    for kind, values, scale in (
        (TYPE_ACC, acc_g, ACC_SCALE),
        (TYPE_GYRO, gyro_dps, GYRO_SCALE),
        (TYPE_ANGLE, angle_deg, ANGLE_SCALE),
    ):
        # 4th int16: temperature (accel, gyro frames) or version (angle) — a plausible constant
        out += encode_serial_frame(kind, _FOUR.pack(*_int16(values, scale), 3000))
    return out


def encode_ble_packet(acc_g, gyro_dps=(0.0, 0.0, 0.0), angle_deg=(0.0, 0.0, 0.0)) -> bytes:
    """One 20-byte WT901BLE data packet."""
    raw = _int16(acc_g, ACC_SCALE) + _int16(gyro_dps, GYRO_SCALE) + _int16(angle_deg, ANGLE_SCALE)
    return bytes([0x55, BLE_DATA]) + _NINE.pack(*raw)


register_protocol(Protocol("serial", WitmotionSerialParser))
register_protocol(
    Protocol(
        "ble",
        WitmotionBleParser,
        notify_uuid=BLE_NOTIFY_UUID,
        advertised=r"^(wt|witmotion)",
    )
)
