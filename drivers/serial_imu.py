"""An IMU on a serial port (pyserial): ``csv`` lines or WitMotion WT901 frames.

The driver thread blocks in ``read`` for at most ``read_timeout_s``, stamps the host time the
moment bytes arrive, parses them and pushes the samples. A port that disappears (read raises
``SerialException``/``OSError``, or the device node is gone) marks the stream down; the loop
reopens the same path with capped backoff, so a re-plugged adapter (or a udev symlink that points
to the new node) comes back by itself.
"""

from __future__ import annotations

import logging
import os
import time

import serial

from drivers.base import ImuDriver
from drivers.config import SerialImuConfig
from drivers.protocols import make_parser
from evimae_stream.clock import Clock
from evimae_stream.errors import DeviceError
from evimae_stream.sink import ImuSink

log = logging.getLogger(__name__)

#: largest read per call (bytes)
MAX_CHUNK = 4096


def check_port_free(port: str) -> None:
    """DeviceError when another program holds ``port`` with an exclusive lock (pyserial's
    ``exclusive=True``, ModemManager, a serial console): ``flock`` it for a moment. A port that
    does not exist or cannot be opened is left to the driver's own, more specific error. POSIX
    only (``fcntl``)."""
    import errno
    import fcntl

    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise DeviceError(
                f"{port}: port is busy (another program holds it); close that program or "
                "pick another port"
            ) from None
    finally:
        os.close(fd)


class SerialImuDriver(ImuDriver):
    """Streams one serial IMU into ``sink`` (see the module docstring)."""

    def __init__(
        self,
        config: SerialImuConfig,
        sink: ImuSink,
        clock: Clock = time.monotonic_ns,
        name: str | None = None,
    ) -> None:
        super().__init__(
            name or config.placement,
            sink,
            make_parser("serial", config.protocol, config.text),
            backoff=config.backoff,
            stall_timeout_s=config.stall_timeout_s,
            clock=clock,
        )
        self.config = config
        self._port: serial.Serial | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.config.port} @ {self.config.baud} baud, {self.config.protocol})"

    def _open(self) -> None:
        self._port = serial.Serial(
            self.config.port,
            self.config.baud,
            timeout=self.config.read_timeout_s,
            exclusive=True,  # flock: a second reader would steal bytes and corrupt both streams
        )
        log.debug("%s: opened", self.describe())

    def _read(self) -> bool:
        port = self._port
        if port is None:
            raise serial.SerialException("port is not open")
        first = port.read(1)  # blocks until a byte arrives or read_timeout_s
        if not first:
            if not os.path.exists(self.config.port):
                raise serial.SerialException(f"{self.config.port} disappeared")
            return False
        t_host_ns = self.clock()
        waiting = port.in_waiting
        data = first + (port.read(min(waiting, MAX_CHUNK)) if waiting else b"")
        return self._ingest(t_host_ns, data) > 0

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException) as exc:
                log.debug("%s: close: %s", self.describe(), exc)
