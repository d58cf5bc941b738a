"""The ``--imu-ports`` hints that ``evimae-stream devices`` prints paste into a shell as is: quoted,
one argument, parsed by ``--imu-ports`` to the port and protocol listed."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from drivers.config import BleImuConfig, SerialImuConfig
from drivers.uri import parse_imu_ports
from evimae_stream.commands.devices import imu_port_arg
from tests.helpers.paths import REPO


def test_serial_hints_are_quoted_for_the_shell():
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports())
    if not ports:
        pytest.skip("no serial ports on this machine to list")
    proc = subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", "devices", "--ble-timeout", "0",
         "--cameras", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    hints = [x.strip() for x in proc.stdout.splitlines() if "--imu-ports" in x]
    assert len(hints) == len(ports)
    for port, hint in zip(ports, hints, strict=True):
        assert hint == f"--imu-ports 'left_arm=serial:{port}?baud=115200&protocol=csv'"
        option, item = shlex.split(hint)  # what a POSIX shell passes: one argument, & kept
        assert option == "--imu-ports"
        cfg = parse_imu_ports([item])["left_arm"]
        assert isinstance(cfg, SerialImuConfig)
        assert (cfg.port, cfg.baud, cfg.protocol) == (port, 115200, "csv")


def test_ble_hint_is_one_shell_argument():
    hint = imu_port_arg("ble:C1:D2:E3:F4:A5:B6?protocol=witmotion")
    assert hint == "'left_arm=ble:C1:D2:E3:F4:A5:B6?protocol=witmotion'"
    (item,) = shlex.split(hint)
    cfg = parse_imu_ports([item])["left_arm"]
    assert isinstance(cfg, BleImuConfig) and cfg.protocol == "witmotion"
