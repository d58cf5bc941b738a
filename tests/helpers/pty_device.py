"""A serial IMU on a real pseudo-terminal, reachable by a stable symlink (tests only).

The writer thread sends encoded samples to the master side at a real rate. ``unplug()`` closes the
pty pair and removes the symlink (the device node disappears), ``replug()`` makes a new pty and
points the symlink at it — what udev does for a re-plugged USB adapter with a by-id link.
``burst()`` sends a backlog at once, as a sender that kept its samples through an outage does.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path


class PtyDevice:
    """Streams ``encode(i)`` bytes for sample i at ``rate_hz`` into a pty behind ``link``."""

    def __init__(self, link: Path, encode: Callable[[int], bytes], rate_hz: float = 100.0):
        self.link = Path(link)
        self.encode = encode
        self.period = 1.0 / rate_hz
        self.sent = 0
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.extra: list[bytes] = []  # raw bytes to inject before the next sample
        self.replug()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def replug(self, paused: bool = False) -> None:
        """A new pty behind the link; ``paused``: it sends nothing until ``_paused`` clears."""
        master, slave = os.openpty()
        tty.setraw(slave)
        tmp = self.link.with_suffix(".new")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)
        with self._lock:
            self._master, self._slave = master, slave
        if not paused:
            self._paused.clear()

    def unplug(self) -> None:
        self._paused.set()
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)

    def inject(self, data: bytes) -> None:
        with self._lock:
            self.extra.append(data)

    def burst(self, count: int, skip: int = 0) -> None:
        """Send the next ``count`` samples at once before the next one (a sender flushing the
        backlog it kept through an outage), after losing ``skip`` samples (ones it could not
        keep)."""
        with self._lock:
            first = self.sent + skip
            self.extra.append(b"".join(self.encode(first + j) for j in range(count)))
            self.sent = first + count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.unplug()

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()
            if self._paused.is_set():
                continue
            with self._lock:
                if self._master is None:
                    continue
                data = b"".join(self.extra) + self.encode(self.sent)
                self.extra.clear()
                try:
                    os.write(self._master, data)
                except OSError:
                    continue
                self.sent += 1
