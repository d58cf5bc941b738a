"""A sink that records everything a driver hands it (tests only; the sink is not under test)."""

from __future__ import annotations

import threading
import time

import numpy as np


class RecordingSink:
    """ImuSink and FrameSink at once: keeps samples/frames and link events, thread-safe."""

    def __init__(self, keep_frames: bool = True) -> None:
        self._lock = threading.Lock()
        self.samples: list[tuple[int, np.ndarray, float | None]] = []
        self.frames: list[tuple[int, np.ndarray]] = []
        self.events: list[tuple[str, str | None]] = []
        self.keep_frames = keep_frames
        self.frame_count = 0

    def push(self, t_host_ns: int, values: np.ndarray, t_dev: float | None = None) -> None:
        with self._lock:
            self.samples.append((t_host_ns, np.array(values, copy=True), t_dev))

    def push_frame(self, t_host_ns: int, frame: np.ndarray) -> None:
        with self._lock:
            self.frame_count += 1
            if self.keep_frames:
                self.frames.append((t_host_ns, frame.copy()))

    def mark_down(self, reason: str) -> None:
        with self._lock:
            self.events.append(("down", reason))

    def mark_up(self) -> None:
        with self._lock:
            self.events.append(("up", None))

    # ---- reading ----
    def values(self) -> np.ndarray:
        with self._lock:
            return np.array([v for _, v, _ in self.samples])

    def t_dev(self) -> list[float | None]:
        with self._lock:
            return [t for _, _, t in self.samples]

    def kinds(self) -> list[str]:
        with self._lock:
            return [k for k, _ in self.events]

    def count(self) -> int:
        with self._lock:
            return len(self.samples) + self.frame_count


def wait_for(predicate, timeout_s: float = 5.0, interval_s: float = 0.01) -> bool:
    """Poll ``predicate`` until true or the timeout; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
