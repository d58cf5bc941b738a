"""A stand-in for ``bleak.BleakClient`` and the radio behind it (tests only).

Only the radio cannot exist here, so only the client is replaced, at the driver's
``client_factory`` boundary. :class:`FakePeripheral` plays a sensor: it produces the bytes a real
one sends (via the project's encoders) and slices them into notifications the way the real
firmware does — the Bangle.js app prints a batch of lines that Espruino splits into 20-byte
notifications; a WitMotion BLE sensor sends 20-byte packets, sometimes two per notification. It
can go out of range, refuse connections, or drop the link (the client then calls its
``disconnected_callback`` like bleak does).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
from bleak.exc import BleakCharacteristicNotFoundError, BleakDeviceNotFoundError, BleakError

from drivers.protocols import PROTOCOLS
from drivers.protocols.text_lines import encode_nus
from drivers.protocols.witmotion import encode_ble_packet

#: ATT payload of one notification at the default MTU of 23
DEFAULT_NOTIFY_PAYLOAD = 20


@dataclass
class FakeChar:
    """What bleak passes as the first argument of a notify callback (only ``uuid`` is used)."""

    uuid: str
    handle: int = 14


@dataclass
class FakePeripheral:
    """A BLE IMU: ``acc`` (N,3) g samples, looped, sent at ``rate_hz`` in its protocol's framing."""

    address: str
    protocol: str = "nus"
    acc: np.ndarray = field(default_factory=lambda: np.array([[0.0, 0.0, 1.0]]))
    rate_hz: float = 50.0
    batch: int = 5  # samples per firmware print (nus) / per burst (witmotion)
    in_range: bool = True
    refuse_connects: int = 0
    connect_delay_s: float = 0.02
    sent: int = 0
    connects: int = 0
    client: FakeBleakClient | None = None

    def gyro(self, i: int) -> np.ndarray:
        return np.array([10.0, -20.0, 30.0]) * np.sin(i / 10)

    def burst(self) -> list[bytes]:
        """The notifications of the next batch of samples."""
        idx = np.arange(self.sent, self.sent + self.batch)
        acc = self.acc[idx % len(self.acc)]
        self.sent += self.batch
        if self.protocol == "nus":
            text = encode_nus(acc, (idx * 1000.0 / self.rate_hz).astype(int))
            step = DEFAULT_NOTIFY_PAYLOAD
            return [text[i : i + step] for i in range(0, len(text), step)]
        packets = [encode_ble_packet(a, self.gyro(int(i))) for a, i in zip(acc, idx, strict=True)]
        # pairs concatenated in one notification, as seen with larger MTUs
        return [b"".join(packets[i : i + 2]) for i in range(0, len(packets), 2)]

    def drop_link(self) -> None:
        """The sensor goes away (walked out of range, battery): the host sees a disconnect."""
        client = self.client
        if client is not None:
            client.loop.call_soon_threadsafe(client.lost)


class FakeAdapter:
    """The set of peripherals in range, and a record of how clients used them."""

    def __init__(self, *peripherals: FakePeripheral) -> None:
        self.peripherals = {p.address: p for p in peripherals}
        self.connecting = 0
        self.max_concurrent_connects = 0
        self.connect_order: list[str] = []

    def client_factory(self, address: str, disconnected_callback=None, *, timeout: float = 10.0):
        """Called exactly like ``BleakClient(address, disconnected_callback=..., timeout=...)``."""
        return FakeBleakClient(self, address, disconnected_callback, timeout)


class FakeBleakClient:
    """The subset of ``bleak.BleakClient`` the driver uses: connect, start_notify, disconnect."""

    def __init__(self, adapter: FakeAdapter, address: str, disconnected_callback, timeout: float):
        self.adapter = adapter
        self.address = address
        self._disconnected_callback = disconnected_callback
        self.timeout = timeout
        self.is_connected = False
        self._task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def connect(self, **kwargs) -> None:
        self.loop = asyncio.get_running_loop()
        adapter = self.adapter
        adapter.connecting += 1
        adapter.max_concurrent_connects = max(adapter.max_concurrent_connects, adapter.connecting)
        try:
            peripheral = adapter.peripherals.get(self.address)
            await asyncio.sleep(peripheral.connect_delay_s if peripheral else 0.02)
            if peripheral is None or not peripheral.in_range:
                raise BleakDeviceNotFoundError(
                    self.address, f"Device with address {self.address} was not found."
                )
            if peripheral.refuse_connects > 0:
                peripheral.refuse_connects -= 1
                raise BleakError("failed to connect: le-connection-abort-by-local")
        finally:
            adapter.connecting -= 1
        adapter.connect_order.append(self.address)
        peripheral.connects += 1
        peripheral.client = self
        self.is_connected = True

    async def start_notify(self, char_specifier, callback, **kwargs) -> None:
        peripheral = self.adapter.peripherals[self.address]
        if str(char_specifier).lower() != PROTOCOLS["ble"][peripheral.protocol].notify_uuid:
            raise BleakCharacteristicNotFoundError(char_specifier)
        self._task = asyncio.get_running_loop().create_task(
            self._stream(peripheral, FakeChar(str(char_specifier)), callback)
        )

    async def _stream(self, peripheral: FakePeripheral, char: FakeChar, callback) -> None:
        period = peripheral.batch / peripheral.rate_hz
        next_t = asyncio.get_running_loop().time()
        while self.is_connected:
            next_t += period
            await asyncio.sleep(max(0.0, next_t - asyncio.get_running_loop().time()))
            for payload in peripheral.burst():
                callback(char, bytearray(payload))

    def lost(self) -> None:
        """Link loss seen from the host (bleak calls disconnected_callback)."""
        if not self.is_connected:
            return
        self._stop_stream()
        if self._disconnected_callback is not None:
            self._disconnected_callback(self)

    def _stop_stream(self) -> None:
        self.is_connected = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def disconnect(self) -> None:
        was = self.is_connected
        self._stop_stream()
        if was and self._disconnected_callback is not None:
            self._disconnected_callback(self)  # bleak also calls it on a requested disconnect
