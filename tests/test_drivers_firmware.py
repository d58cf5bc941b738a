"""The companion firmware's output is what the parsers read.

The formatting logic of the sketch (Arduino ``Print::printFloat``) and of the Bangle.js app
(``Number.toFixed``) is reproduced here, fed with realistic sensor values, and parsed; the
example output in each README is parsed too, and the sources are checked to still print the
fields this test reproduces.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from drivers.protocols import CsvParser, NusParser

FIRMWARE = Path(__file__).resolve().parents[1] / "drivers" / "firmware"


def arduino_print_float(value: float, digits: int) -> str:
    """Arduino's ``Print::printFloat`` (AVR: 32-bit float arithmetic)."""
    number = np.float32(value)
    if np.isnan(number):
        return "nan"
    if np.isinf(number):
        return "inf"
    out = ""
    if number < 0:
        out = "-"
        number = -number
    rounding = np.float32(0.5)
    for _ in range(digits):
        rounding = np.float32(rounding / np.float32(10.0))
    number = np.float32(number + rounding)
    int_part = int(number)
    remainder = np.float32(number - np.float32(int_part))
    out += str(int_part)
    if digits > 0:
        out += "."
    for _ in range(digits):
        remainder = np.float32(remainder * np.float32(10.0))
        digit = int(remainder)
        out += str(digit)
        remainder = np.float32(remainder - np.float32(digit))
    return out


def sketch_line(raw_acc, raw_gyro, millis: int) -> str:
    """What ``evimae_mpu6050.ino`` prints for one MPU6050 reading (``Serial.println`` -> CRLF)."""
    fields = [arduino_print_float(np.float32(r) / np.float32(4096.0), 4) for r in raw_acc]
    fields += [arduino_print_float(np.float32(r) / np.float32(65.5), 2) for r in raw_gyro]
    return ",".join(fields) + f",{millis}\r\n"


def bangle_line(t_ms: int, acc) -> str:
    """What ``evimaenus.app.js`` writes: ``t + "," + x.toFixed(3) + ...`` with a LF."""
    return f"{t_ms}," + ",".join(f"{float(a):.3f}" for a in acc) + "\n"


def readme_example(path: Path) -> bytes:
    text = path.read_text()
    block = re.search(r"Example output.*?```text\n(.*?)```", text, re.S)
    assert block, f"{path}: no example output block"
    return block.group(1).encode()


def test_sources_still_print_the_reproduced_format():
    ino = (FIRMWARE / "arduino_mpu6050" / "evimae_mpu6050.ino").read_text()
    assert ino.count("/ ACC_LSB_PER_G, 4)") == 3 and ino.count("/ GYRO_LSB_PER_DPS, 2)") == 3
    assert "Serial.println(t);" in ino and "Serial.begin(115200)" in ino
    assert "0x1C, 0x10" in ino and "4096.0" in ino  # +-8 g and its scale agree
    js = (FIRMWARE / "banglejs" / "evimaenus.app.js").read_text()
    assert 'x.toFixed(3) + "," + y.toFixed(3) + "," + z.toFixed(3) + "\\n"' in js
    assert "var RATE_HZ = 50;" in js and "Bangle.setPollInterval(1000 / RATE_HZ)" in js


def test_arduino_sketch_lines_parse_to_the_sensor_values():
    rng = np.random.default_rng(7)
    raw_acc = rng.integers(-32768, 32768, (200, 3))
    raw_gyro = rng.integers(-32768, 32768, (200, 3))
    millis = 1103 + 10 * np.arange(200)
    text = "# evimae csv v1 mpu6050 100Hz 8g 500dps: ax,ay,az,gx,gy,gz,t_ms\r\n" + "".join(
        sketch_line(a, g, int(t)) for a, g, t in zip(raw_acc, raw_gyro, millis, strict=True)
    )
    parser = CsvParser()
    out = []
    data = text.encode()
    for i in range(0, len(data), 64):  # a USB-serial adapter delivers arbitrary chunks
        out += parser.feed(data[i : i + 64])
    assert len(out) == 200 and parser.counters.bad_frames == 0
    values = np.array([s.values for s in out])
    np.testing.assert_allclose(values[:, :3], raw_acc / 4096.0, atol=1e-4)
    np.testing.assert_allclose(values[:, 3:], raw_gyro / 65.5, atol=0.01)
    np.testing.assert_allclose([s.t_dev for s in out], millis / 1000.0)


def test_bangle_app_lines_parse_to_the_wear_values(wear_dir):
    with (wear_dir / "right_wrist_10_20.csv").open() as fh:
        rows = [r for _, r in zip(range(500), csv.reader(fh), strict=False)]
    acc = np.array([[float(r[2]), float(r[3]), float(r[4])] for r in rows])
    t_ms = 20 * np.arange(1, 501)
    text = "".join(bangle_line(int(t), a) for t, a in zip(t_ms, acc, strict=True))
    data = ("# evimae nus v1 50Hz 8g |a|=1.00\n" + text).encode()
    parser = NusParser()
    out = []
    for i in range(0, len(data), 20):  # 20-byte notifications
        out += parser.feed(data[i : i + 20])
    assert len(out) == 500 and parser.counters.bad_frames == 0
    np.testing.assert_allclose(np.array([s.values for s in out]), acc, atol=5e-4 + 1e-6)
    np.testing.assert_allclose([s.t_dev for s in out], t_ms / 1000.0)


@pytest.mark.parametrize(
    ("readme", "parser", "samples", "channels"),
    [
        ("arduino_mpu6050/README.md", CsvParser, 3, 6),
        ("banglejs/README.md", NusParser, 5, 3),
    ],
)
def test_readme_example_output_parses_cleanly(readme, parser, samples, channels):
    p = parser()
    out = p.feed(readme_example(FIRMWARE / readme))
    assert len(out) == samples and p.counters.bad_frames == 0
    assert all(s.values.shape == (channels,) and s.t_dev is not None for s in out)


def test_arduino_print_float_matches_known_arduino_output():
    # values from the Arduino reference: print(1.23456, 2) -> "1.23"; negatives keep their sign
    assert arduino_print_float(1.23456, 2) == "1.23"
    assert arduino_print_float(-0.00001, 4) == "-0.0000"
    assert arduino_print_float(2.5, 0) == "3"
