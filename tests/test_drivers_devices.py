"""``evimae-stream devices`` run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

NO_BLUEZ = not os.path.exists("/run/dbus/system_bus_socket") and not os.path.exists(
    "/var/run/dbus/system_bus_socket"
)


def devices(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", "devices", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.skipif(
    not NO_BLUEZ, reason="this machine has BlueZ: the no-adapter message can't show"
)
def test_lists_serial_and_cameras_and_says_in_one_line_that_ble_is_unavailable():
    from serial.tools import list_ports

    proc = devices("--ble-timeout", "0.5", "--cameras", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    from evimae_stream.commands.devices import offered_as_imu

    # ports with a USB or Bluetooth identity are offered; built-in legacy UARTs are listed apart
    found = list_ports.comports()
    offered = [p.device for p in found if offered_as_imu(p)]
    assert f"Serial ports ({len(offered)}):" in out
    for device in offered:
        assert f"serial:{device}?baud=115200" in out
    for port in found:
        if not offered_as_imu(port):
            assert f"serial:{port.device}?" not in out
            assert port.device in out.split("legacy UART, not offered:", 1)[1]
    ble_lines = [line for line in out.splitlines() if line.startswith("BLE")]
    assert len(ble_lines) == 1 and "unavailable" in ble_lines[0] and "BlueZ" in ble_lines[0]
    assert "Cameras (" in out


def test_skipping_scans_and_bad_timeout():
    proc = devices("--ble-timeout", "0", "--cameras", "0")
    assert proc.returncode == 0 and "BLE" not in proc.stdout and "Cameras" not in proc.stdout
    bad = devices("--ble-timeout", "-3")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--ble-timeout" in bad.stderr
