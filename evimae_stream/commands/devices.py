"""List the sensors this machine can see: serial ports, nearby BLE devices, cameras that open."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex

from evimae_stream.errors import InputError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``evimae-stream devices``."""
    parser.add_argument(
        "--ble-timeout",
        type=float,
        default=4.0,
        metavar="S",
        help="seconds to scan for BLE devices (0 skips the scan; default 4)",
    )
    parser.add_argument(
        "--cameras",
        type=int,
        default=4,
        metavar="N",
        help="probe camera indices 0..N-1 (0 skips; default 4)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the three lists, each with the URI or option to use it."""
    if not 0 <= args.ble_timeout <= 120:
        raise InputError(f"--ble-timeout {args.ble_timeout:g}: use 0..120 seconds")
    if not 0 <= args.cameras <= 64:
        raise InputError(f"--cameras {args.cameras}: use 0..64")
    _serial_ports()
    if args.ble_timeout > 0:
        _ble_devices(args.ble_timeout)
    if args.cameras > 0:
        _cameras(args.cameras)
    return 0


def imu_port_arg(uri: str, placement: str = "left_arm") -> str:
    """``PLACEMENT=URI`` quoted for a POSIX shell, ready to paste: a URI's ``?`` is a glob
    character and its ``&`` would send the command before it to the background."""
    return shlex.quote(f"{placement}={uri}")


def _serial_ports() -> None:
    from serial.tools import list_ports

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    print(f"Serial ports ({len(ports)}):")
    for port in ports:
        details = ", ".join(x for x in (port.description, port.hwid) if x and x != "n/a")
        print(f"  {port.device}{'  ' + details if details else ''}")
        print(f"      --imu-ports {imu_port_arg(f'serial:{port.device}?baud=115200&protocol=csv')}")
    if not ports:
        print("  none")


def _ble_guess(name: str) -> str:
    lowered = name.lower()
    if "bangle" in lowered or "puck" in lowered or "espruino" in lowered:
        return "nus"
    if lowered.startswith(("wt", "witmotion")):
        return "witmotion"
    return "nus"


def _ble_devices(timeout_s: float) -> None:
    try:
        from bleak import BleakScanner

        found = asyncio.run(BleakScanner.discover(timeout=timeout_s, return_adv=True))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"BLE: unavailable (no Bluetooth adapter, or BlueZ/D-Bus not running: {reason}); "
            "start bluetoothd with an adapter attached, or use serial IMUs"
        )
        return
    devices = sorted(found.values(), key=lambda da: -(da[1].rssi or -999))
    print(f"BLE devices ({len(devices)}, scanned {timeout_s:g} s):")
    for device, adv in devices:
        name = device.name or adv.local_name or "?"
        print(f"  {device.address}  {name}  RSSI {adv.rssi} dBm")
        uri = f"ble:{device.address}?protocol={_ble_guess(name)}"
        print(f"      --imu-ports {imu_port_arg(uri)}")
    if not devices:
        print("  none")


def _cameras(max_index: int) -> None:
    from drivers.camera import probe_cameras

    cams = probe_cameras(max_index)
    print(f"Cameras ({len(cams)} of indices 0..{max_index - 1}):")
    for index, path, (width, height) in cams:
        print(f"  {index}  {path}  {width}x{height}      --camera {index}")
    if not cams:
        print("  none")
