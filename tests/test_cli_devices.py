"""The ``--imu-ports`` hints that ``evimae-stream devices`` prints paste into a shell as is: quoted,
one argument, parsed by ``--imu-ports`` to the port and protocol listed."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from drivers.config import BleImuConfig, SerialImuConfig
from drivers.uri import parse_imu_ports
from evimae_stream.commands.devices import imu_port_arg, offered_as_imu
from tests.helpers.paths import REPO


def _devices_stdout() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", "devices", "--ble-timeout", "0",
         "--cameras", "0", "--lsl-timeout", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_serial_hints_are_quoted_for_the_shell():
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports() if offered_as_imu(p))
    if not ports:
        pytest.skip("no USB or Bluetooth serial ports on this machine to list")
    hints = [x.strip() for x in _devices_stdout().splitlines() if "--imu-ports" in x]
    assert len(hints) == len(ports)
    for port, hint in zip(ports, hints, strict=True):
        assert hint == f"--imu-ports 'left_arm=serial:{port}?baud=115200&protocol=csv'"
        option, item = shlex.split(hint)  # what a POSIX shell passes: one argument, & kept
        assert option == "--imu-ports"
        cfg = parse_imu_ports([item])["left_arm"]
        assert isinstance(cfg, SerialImuConfig)
        assert (cfg.port, cfg.baud, cfg.protocol) == (port, 115200, "csv")


def test_a_legacy_uart_is_listed_apart_and_not_offered_as_an_imu():
    from serial.tools import list_ports

    legacy = sorted(p.device for p in list_ports.comports() if p.vid is None)
    legacy = [d for d in legacy if "rfcomm" not in d]
    if not legacy:
        pytest.skip("no built-in serial port (/dev/ttyS*) on this machine")
    out = _devices_stdout()
    hints = [x for x in out.splitlines() if "--imu-ports" in x and "serial:" in x]
    for device in legacy:
        assert not [h for h in hints if f"serial:{device}?" in h], out
    (line,) = [x for x in out.splitlines() if "legacy UART, not offered" in x]
    assert all(d in line for d in legacy), line


def test_usb_and_bluetooth_ports_are_offered_and_built_in_uarts_are_not():
    from serial.tools.list_ports_common import ListPortInfo

    usb = ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    usb.vid, usb.pid = 0x1A86, 0x7523  # a CH340 USB-serial adapter
    acm = ListPortInfo("/dev/ttyACM0", skip_link_detection=True)
    acm.vid, acm.pid = 0x2341, 0x0043
    rfcomm = ListPortInfo("/dev/rfcomm0", skip_link_detection=True)
    uart = ListPortInfo("/dev/ttyS0", skip_link_detection=True)
    assert [offered_as_imu(p) for p in (usb, acm, rfcomm, uart)] == [True, True, True, False]


def test_ble_hint_is_one_shell_argument():
    hint = imu_port_arg("ble:C1:D2:E3:F4:A5:B6?protocol=witmotion")
    assert hint == "'left_arm=ble:C1:D2:E3:F4:A5:B6?protocol=witmotion'"
    (item,) = shlex.split(hint)
    cfg = parse_imu_ports([item])["left_arm"]
    assert isinstance(cfg, BleImuConfig) and cfg.protocol == "witmotion"
