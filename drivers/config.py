"""Typed, validated configurations of the sensor sources (one dataclass per backend).

:mod:`drivers.uri` builds these from ``--imu-ports``; the drivers take them as they are. Every
``__post_init__`` raises :class:`~evimae_stream.errors.InputError` with one line naming the source
(its ``uri``) and the bad field, so a config built in code fails as clearly as one parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.protocols.base import PROTOCOLS, default_protocol
from drivers.protocols.text_lines import TextFormat
from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS

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
class SerialImuConfig:
    """An IMU on a serial port (USB-UART, Bluetooth SPP, pty)."""

    port: str
    placement: str = "left_arm"
    baud: int = 115200
    protocol: str = field(default_factory=lambda: default_protocol("serial"))
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
        PROTOCOLS["serial"].get_or_fail(self.protocol, where)
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
    protocol: str = field(default_factory=lambda: default_protocol("ble"))
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
        PROTOCOLS["ble"].get_or_fail(self.protocol, where)
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


@dataclass(frozen=True)
class LslImuConfig:
    """An IMU published as a Lab Streaming Layer stream (``lsl:name=..&type=..&source_id=..``),
    read by :mod:`drivers.lsl`: the stream is found by the given properties (at least one);
    ``cols``: the channels (labels or indices) that are ``ax, ay, az[, gx, gy, gz]``;
    ``unit``/``gunit``: the units of channels whose metadata names none."""

    placement: str = "left_arm"
    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    cols: tuple[str, ...] | None = None
    unit: str = "g"
    gunit: str = "deg/s"
    rate_hz: float | None = None
    resolve_timeout_s: float = 2.0
    stall_timeout_s: float | None = 2.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    uri: str = ""

    def __post_init__(self) -> None:
        from evimae_stream.channel_map import unit_factor

        where = self.uri or "lsl"
        if self.placement not in PLACEMENTS:
            _fail(
                where, f"unknown placement {self.placement!r}; use one of {', '.join(PLACEMENTS)}"
            )
        props = {"name": self.name, "type": self.type, "source_id": self.source_id}
        if not any(props.values()):
            _fail(where, "name the stream: lsl:name=NAME (or type=, source_id=)")
        for key, value in props.items():
            if value is not None and ("'" in value or not value.strip()):
                _fail(where, f"{key}={value!r}: give a non-empty value without quotes")
        unit_factor(self.unit, "acc", where)
        unit_factor(self.gunit, "gyro", where)
        _check_rate(where, self.rate_hz)
        if not self.resolve_timeout_s > 0:
            _fail(where, f"resolve_timeout_s must be positive, got {self.resolve_timeout_s}")

    def predicate(self) -> str:
        """The LSL query (XPath on the stream info) that finds the stream."""
        props = {"name": self.name, "type": self.type, "source_id": self.source_id}
        return " and ".join(f"{k}='{v}'" for k, v in props.items() if v is not None)


ImuSourceConfig = SerialImuConfig | BleImuConfig | SyntheticImuConfig | LslImuConfig


def _check_rate(where: str, rate_hz: float | None) -> None:
    if rate_hz is not None and not 0 < rate_hz <= 10_000:
        _fail(where, f"rate must be in (0, 10000] Hz, got {rate_hz}")
