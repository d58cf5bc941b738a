"""Typed, validated configurations of the sensor sources (one dataclass per backend).

:mod:`drivers.uri` builds these from ``--imu-ports``; the drivers take them as they are. Every
``__post_init__`` raises :class:`~evimae_stream.errors.InputError` with one line naming the source
(its ``uri``) and the bad field, so a config built in code fails as clearly as one parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS

#: column names a text-line protocol may map (``_`` skips a column)
CSV_COLUMN_NAMES: frozenset[str] = frozenset({"ax", "ay", "az", "gx", "gy", "gz", "t", "_"})
#: device-time units and their factor to seconds
TIME_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
SERIAL_PROTOCOLS: tuple[str, ...] = ("csv", "witmotion")
BLE_PROTOCOLS: tuple[str, ...] = ("nus", "witmotion")

_MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
# macOS CoreBluetooth hides MAC addresses and names peripherals by a UUID
_CB_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def _fail(where: str, what: str) -> None:
    raise InputError(f"{where}: {what}")


@dataclass(frozen=True)
class BackoffConfig:
    """Reconnect delays: ``initial_s``, multiplied by ``factor`` after each failure, capped."""

    initial_s: float = 0.2
    max_s: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            _fail("backoff", f"need 0 < initial_s ({self.initial_s}) <= max_s ({self.max_s})")
        if not self.factor >= 1.0:
            _fail("backoff", f"factor must be >= 1, got {self.factor}")

    def delays(self):
        """Endless sequence of delays: initial, initial·factor, ... capped at ``max_s``."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


@dataclass(frozen=True)
class TextFormat:
    """How a text-line protocol (``csv``, ``nus``) maps columns to values.

    ``cols`` names each comma-separated column (``ax,ay,az`` required, ``gx,gy,gz`` all or none,
    ``t`` at most once, ``_`` to skip); None means "decide by the field count of the first valid
    line". ``scale`` converts acceleration units to g, ``gscale`` gyro units to deg/s, ``tunit``
    is the unit of ``t``.
    """

    cols: tuple[str, ...] | None = None
    scale: float = 1.0
    gscale: float = 1.0
    tunit: str = "ms"
    where: str = "text format"

    def __post_init__(self) -> None:
        if self.cols is not None:
            cols = self.cols
            unknown = [c for c in cols if c not in CSV_COLUMN_NAMES]
            if unknown:
                _fail(
                    self.where,
                    f"cols: unknown column {unknown[0]!r}; use names from "
                    f"{','.join(sorted(CSV_COLUMN_NAMES))}",
                )
            for name in ("ax", "ay", "az", "gx", "gy", "gz", "t"):
                if cols.count(name) > 1:
                    _fail(self.where, f"cols: column {name!r} appears twice")
            if not all(a in cols for a in ("ax", "ay", "az")):
                _fail(self.where, "cols: must name ax, ay and az")
            gyro = [g in cols for g in ("gx", "gy", "gz")]
            if any(gyro) and not all(gyro):
                _fail(self.where, "cols: name all of gx, gy, gz or none")
        for name in ("scale", "gscale"):
            value = getattr(self, name)
            if not (value > 0 and value < float("inf")):
                _fail(self.where, f"{name} must be a positive number, got {value}")
        if self.tunit not in TIME_UNITS:
            _fail(self.where, f"tunit must be one of {'|'.join(TIME_UNITS)}, got {self.tunit!r}")

    @property
    def has_gyro(self) -> bool | None:
        """Whether the layout has gyro columns; None while the layout is automatic."""
        return None if self.cols is None else "gx" in self.cols


@dataclass(frozen=True)
class SerialImuConfig:
    """An IMU on a serial port (USB-UART, Bluetooth SPP, pty)."""

    port: str
    placement: str = "left_arm"
    baud: int = 115200
    protocol: str = "csv"
    text: TextFormat = field(default_factory=TextFormat)
    rate_hz: float | None = None
    read_timeout_s: float = 0.05
    stall_timeout_s: float | None = 2.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    uri: str = ""

    def __post_init__(self) -> None:
        where = self.uri or self.port
        if not self.port:
            _fail(where, "empty serial port path")
        if self.placement not in PLACEMENTS:
            _fail(
                where, f"unknown placement {self.placement!r}; use one of {', '.join(PLACEMENTS)}"
            )
        if not isinstance(self.baud, int) or not 50 <= self.baud <= 12_000_000:
            _fail(where, f"bad baud {self.baud!r}; use an integer such as 115200")
        if self.protocol not in SERIAL_PROTOCOLS:
            _fail(
                where,
                f"unknown serial protocol {self.protocol!r}; "
                f"use one of {'|'.join(SERIAL_PROTOCOLS)}",
            )
        _check_rate(where, self.rate_hz)
        if not 0 < self.read_timeout_s <= 1.0:
            _fail(where, f"read_timeout_s must be in (0, 1], got {self.read_timeout_s}")
        if self.stall_timeout_s is not None and not self.stall_timeout_s > 0:
            _fail(where, f"stall_timeout_s must be positive or None, got {self.stall_timeout_s}")


@dataclass(frozen=True)
class BleImuConfig:
    """An IMU over Bluetooth Low Energy (Nordic UART text lines or WitMotion BLE packets)."""

    address: str
    placement: str = "left_arm"
    protocol: str = "nus"
    text: TextFormat = field(default_factory=lambda: TextFormat(where="ble nus"))
    rate_hz: float | None = None
    connect_timeout_s: float = 10.0
    stall_timeout_s: float | None = 3.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    uri: str = ""

    def __post_init__(self) -> None:
        where = self.uri or f"ble:{self.address}"
        address = self.address.upper()
        if not (_MAC.match(address) or _CB_UUID.match(address)):
            _fail(
                where,
                f"bad BLE address {self.address!r}; expected six hex pairs like "
                "AA:BB:CC:DD:EE:FF (or a macOS device UUID)",
            )
        object.__setattr__(self, "address", address)
        if self.placement not in PLACEMENTS:
            _fail(
                where, f"unknown placement {self.placement!r}; use one of {', '.join(PLACEMENTS)}"
            )
        if self.protocol not in BLE_PROTOCOLS:
            _fail(
                where,
                f"unknown BLE protocol {self.protocol!r}; use one of {'|'.join(BLE_PROTOCOLS)}",
            )
        _check_rate(where, self.rate_hz)
        if not self.connect_timeout_s > 0:
            _fail(where, f"connect_timeout_s must be positive, got {self.connect_timeout_s}")
        if self.stall_timeout_s is not None and not self.stall_timeout_s > 0:
            _fail(where, f"stall_timeout_s must be positive or None, got {self.stall_timeout_s}")


@dataclass(frozen=True)
class SyntheticImuConfig:
    """A simulated IMU (``synthetic[?seed=..&rate=..]``), driven by :mod:`drivers.synthetic`."""

    placement: str = "left_arm"
    seed: int = 0
    rate_hz: float = 50.0
    uri: str = "synthetic"

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            _fail(
                self.uri,
                f"unknown placement {self.placement!r}; use one of {', '.join(PLACEMENTS)}",
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            _fail(self.uri, f"seed must be a non-negative integer, got {self.seed!r}")
        _check_rate(self.uri, self.rate_hz)


ImuSourceConfig = SerialImuConfig | BleImuConfig | SyntheticImuConfig


def _check_rate(where: str, rate_hz: float | None) -> None:
    if rate_hz is not None and not 0 < rate_hz <= 10_000:
        _fail(where, f"rate must be in (0, 10000] Hz, got {rate_hz}")
