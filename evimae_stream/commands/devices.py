"""List the sensors this machine can see: serial ports, nearby BLE devices, cameras that open,
Lab Streaming Layer streams."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
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
    parser.add_argument(
        "--lsl-timeout",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds to look for LSL streams (0 skips; default 1; needs the [lsl] extra)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the lists, each with the URI or option to use it."""
    if not 0 <= args.ble_timeout <= 120:
        raise InputError(f"--ble-timeout {args.ble_timeout:g}: use 0..120 seconds")
    if not 0 <= args.cameras <= 64:
        raise InputError(f"--cameras {args.cameras}: use 0..64")
    _serial_ports()
    if args.ble_timeout > 0:
        _ble_devices(args.ble_timeout)
    if args.cameras > 0:
        _cameras(args.cameras)
    if not 0 <= args.lsl_timeout <= 60:
        raise InputError(f"--lsl-timeout {args.lsl_timeout:g}: use 0..60 seconds")
    if args.lsl_timeout > 0:
        _lsl_streams(args.lsl_timeout)
    return 0


def imu_port_arg(uri: str, placement: str = "left_arm") -> str:
    """``PLACEMENT=URI`` quoted for a POSIX shell, ready to paste: a URI's ``?`` is a glob
    character and its ``&`` would send the command before it to the background."""
    return shlex.quote(f"{placement}={uri}")


def offered_as_imu(port) -> bool:
    """Whether a serial port (pyserial's ``ListPortInfo``) can be a body-worn IMU: it has a USB
    identity (a USB-serial adapter or a CDC-ACM device: ``vid``) or is a Bluetooth serial link
    (``rfcomm``). A built-in UART (``/dev/ttyS*``, no USB identity) is the machine's own legacy
    port, listed apart and not offered."""
    return port.vid is not None or port.name.startswith("rfcomm")


def _serial_ports() -> None:
    from serial.tools import list_ports

    from drivers.protocols import PROTOCOLS, default_protocol

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    offered = [p for p in ports if offered_as_imu(p)]
    legacy = [p for p in ports if not offered_as_imu(p)]
    print(f"Serial ports ({len(offered)}):")
    for port in offered:
        details = ", ".join(x for x in (port.description, port.hwid) if x and x != "n/a")
        print(f"  {port.device}{'  ' + details if details else ''}")
        uri = f"serial:{port.device}?baud=115200&protocol={default_protocol('serial')}"
        print(f"      --imu-ports {imu_port_arg(uri)}")
    if not offered:
        print("  none")
    if legacy:
        names = ", ".join(p.device for p in legacy)
        print(
            f"  legacy UART, not offered: {names} (built-in ports with no USB or Bluetooth "
            "identity; pass --imu-ports serial:PATH to use one anyway)"
        )
    print(f"  protocols: {PROTOCOLS['serial'].choices()}")


def ble_protocol_for(name: str) -> str:
    """The BLE protocol a device's advertised ``name`` suggests (each protocol's ``advertised``
    pattern), else the BLE default."""
    from drivers.protocols import PROTOCOLS, default_protocol

    lowered = name.lower()
    for protocol in PROTOCOLS["ble"].values():
        if protocol.advertised and re.search(protocol.advertised, lowered):
            return protocol.name
    return default_protocol("ble")


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
    from drivers.protocols import PROTOCOLS

    devices = sorted(found.values(), key=lambda da: -(da[1].rssi or -999))
    print(f"BLE devices ({len(devices)}, scanned {timeout_s:g} s):")
    for device, adv in devices:
        name = device.name or adv.local_name or "?"
        print(f"  {device.address}  {name}  RSSI {adv.rssi} dBm")
        uri = f"ble:{device.address}?protocol={ble_protocol_for(name)}"
        print(f"      --imu-ports {imu_port_arg(uri)}")
    if not devices:
        print("  none")
    print(f"  protocols: {PROTOCOLS['ble'].choices()}")


def _cameras(max_index: int) -> None:
    from drivers.camera import probe_cameras

    cams = probe_cameras(max_index)
    print(f"Cameras ({len(cams)} of indices 0..{max_index - 1}):")
    for index, path, (width, height) in cams:
        print(f"  {index}  {path}  {width}x{height}      --camera {index}")
    if not cams:
        print("  none")


def _lsl_streams(timeout_s: float) -> None:
    from evimae_stream.errors import EvimaeError
    from evimae_stream.extras import require_lsl

    try:
        pylsl = require_lsl("LSL")
    except EvimaeError as exc:
        print(f"{exc}")
        return
    streams = sorted(pylsl.resolve_streams(wait_time=timeout_s), key=lambda i: i.name())
    print(f"LSL streams ({len(streams)}, looked {timeout_s:g} s):")
    for info in streams:
        print(
            f"  {info.name()}  type {info.type() or '-'}  {info.channel_count()} channels "
            f"{info.nominal_srate():g} Hz  source_id {info.source_id() or '-'}  "
            f"on {info.hostname()}"
        )
        if info.channel_count() >= 3 and info.channel_format() != pylsl.cf_string:
            print(f"      --imu-ports {imu_port_arg(f'lsl:name={info.name()}')}")
    if not streams:
        print("  none")
