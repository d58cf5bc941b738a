"""An IMU over Bluetooth Low Energy (bleak): Nordic UART text lines or WitMotion BLE packets.

One asyncio event loop in one thread (:class:`BleLoop`, shared by all BLE drivers) owns the
adapter. Connections are made one after another (a lock in that loop): BlueZ and most adapters
fail when several connects run at once. Notifications are stamped with the host clock in the
callback, the moment they arrive, and queued (bounded) to the driver's own thread, which parses
them and pushes samples. The disconnect callback wakes that thread, which marks the stream down and
reconnects with capped backoff like every other driver.

The bleak client class is injectable (``client_factory``, called like ``BleakClient(address,
disconnected_callback=..., timeout=...)``) so that tests replay recorded payloads without a radio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from drivers.base import ImuDriver
from drivers.config import BleImuConfig
from drivers.protocols import PROTOCOLS, make_parser
from evimae_stream.clock import Clock
from evimae_stream.sink import ImuSink

log = logging.getLogger(__name__)

#: notifications buffered between the BLE loop and a driver thread
QUEUE_SIZE = 1024


class BleLoop:
    """The one asyncio loop (in one daemon thread) that talks to the BLE adapter."""

    _shared: BleLoop | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="ble-loop", daemon=True)
        self._connect_lock: asyncio.Lock | None = None
        self._thread.start()

    @classmethod
    def shared(cls) -> BleLoop:
        """The process-wide instance (created on first use)."""
        with cls._shared_lock:
            if cls._shared is None or not cls._shared._thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run ``coro`` on the BLE loop; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    @property
    def connect_lock(self) -> asyncio.Lock:
        """Serialises connection attempts (use only inside the loop)."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        return self._connect_lock

    def close(self) -> None:
        """Cancel what still runs and stop the loop thread (the shared loop normally lives as
        long as the process)."""
        if not self._thread.is_alive():
            return
        try:
            self.submit(self._cancel_all()).result(2.0)
        except Exception as exc:
            log.debug("BLE loop shutdown: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(1.0)

    @staticmethod
    async def _cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _default_client_factory(*args, **kwargs):
    from bleak import BleakClient

    return BleakClient(*args, **kwargs)


class BleImuDriver(ImuDriver):
    """Streams one BLE IMU into ``sink`` (see the module docstring)."""

    def __init__(
        self,
        config: BleImuConfig,
        sink: ImuSink,
        clock: Clock = time.monotonic_ns,
        name: str | None = None,
        ble_loop: BleLoop | None = None,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(
            name or config.placement,
            sink,
            make_parser("ble", config.protocol, config.text),
            backoff=config.backoff,
            stall_timeout_s=config.stall_timeout_s,
            clock=clock,
        )
        self.config = config
        self._ble = ble_loop or BleLoop.shared()
        self._client_factory = client_factory or _default_client_factory
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(QUEUE_SIZE)
        self._client: Any = None
        self._generation = 0
        self._lost = threading.Event()

    def describe(self) -> str:
        return f"{self.name} (ble:{self.config.address}, {self.config.protocol})"

    # ---- in the BLE loop ---------------------------------------------------------------------
    async def _connect(self, generation: int) -> None:
        uuid = PROTOCOLS["ble"][self.config.protocol].notify_uuid
        async with self._ble.connect_lock:
            client = self._client_factory(
                self.config.address,
                disconnected_callback=lambda _c: self._on_disconnect(generation),
                timeout=self.config.connect_timeout_s,
            )
            try:
                await asyncio.wait_for(client.connect(), self.config.connect_timeout_s + 1.0)
                await client.start_notify(
                    uuid, lambda _char, data: self._on_notify(generation, data)
                )
            except BaseException:
                try:
                    await asyncio.wait_for(client.disconnect(), 2.0)
                except Exception as exc:
                    log.debug("%s: disconnect after failed connect: %s", self.describe(), exc)
                raise
            self._client = client

    def _on_notify(self, generation: int, data: bytearray) -> None:
        if generation != self._generation:
            return
        t_host_ns = self.clock()
        try:
            self._queue.put_nowait((t_host_ns, bytes(data)))
        except queue.Full:
            self._record(0, 0, dropped=1)

    def _on_disconnect(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._lost.set()
        # when the queue is full the thread still sees _lost once it has drained it
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    # ---- in the driver thread ----------------------------------------------------------------
    def _open(self) -> None:
        self._generation += 1
        self._lost.clear()
        while not self._queue.empty():
            self._queue.get_nowait()
        future = self._ble.submit(self._connect(self._generation))
        while True:
            try:
                future.result(timeout=0.1)
                return
            except concurrent.futures.TimeoutError:
                if self._stop.is_set():
                    future.cancel()
                    raise ConnectionAbortedError("stopped while connecting") from None

    def _read(self) -> bool:
        try:
            item = self._queue.get(timeout=0.1)
        except queue.Empty:
            if self._lost.is_set():
                raise ConnectionError("BLE device disconnected") from None
            return False
        if item is None:
            raise ConnectionError("BLE device disconnected")
        delivered = self._ingest(*item)
        while delivered == 0 or self._queue.qsize():
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._lost.set()
                break
            delivered += self._ingest(*item)
        return delivered > 0

    def _close(self) -> None:
        self._generation += 1  # callbacks of the old connection are ignored from now on
        client, self._client = self._client, None
        if client is None:
            return
        future = self._ble.submit(client.disconnect())
        try:
            future.result(timeout=0.5)
        except Exception as exc:
            log.debug("%s: disconnect: %s", self.describe(), exc)
