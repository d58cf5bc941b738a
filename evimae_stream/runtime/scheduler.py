"""Window timing: ticks every ``stride`` seconds on a fixed grid from the run's origin, a clock the
buffers read (the tick time), and the latest-wins hand-over between the scheduler and inference.

Tick ``k`` (k = 1, 2, …) is at ``origin + k·stride``. Live, the scheduler wakes a small guard
after each tick (so samples stamped just before it have been handed over), releases the gates up
to the tick and assembles the window. If it wakes more than a stride late it jumps to the newest
due tick and counts the ticks it skipped; if inference has not taken the previous window yet, the
new one replaces it (latest wins) and the replaced one is counted as skipped.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")
_NS = 1_000_000_000


class TickClock:
    """The "now" the buffers see: the current tick time (set by the scheduler)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def set_ns(self, t_ns: int) -> None:
        self._now = int(t_ns)

    def now_ns(self) -> int:
        return self._now


class ScaledClock:
    """Host time running ``speed`` times faster than ``time.monotonic_ns`` (paced replays at N×:
    samples are stamped and windows cut in session time, so the model sees the data at its real
    rate; only the wall clock is compressed). Callable like ``time.monotonic_ns``;
    :meth:`set_speed` changes the pace from now on without a jump."""

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        wall0 = time.monotonic_ns()
        self._anchor = (wall0, wall0, float(speed))  # (scaled time, wall time, speed), one tuple

    @property
    def speed(self) -> float:
        return self._anchor[2]

    def set_speed(self, speed: float) -> None:
        """Run ``speed`` times faster than the wall from now on."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        wall = time.monotonic_ns()
        base, wall0, old = self._anchor
        self._anchor = (base + round((wall - wall0) * old), wall, float(speed))

    def __call__(self) -> int:
        base, wall0, speed = self._anchor
        return base + round((time.monotonic_ns() - wall0) * speed)


def tick_ns(origin_ns: int, stride_s: float, k: int) -> int:
    """Host time of tick ``k``."""
    return int(origin_ns) + round(k * stride_s * _NS)


def due_tick(origin_ns: int, stride_s: float, now_ns: int) -> int:
    """The newest tick at or before ``now_ns`` (0 before the first)."""
    return max(0, int((now_ns - origin_ns) // round(stride_s * _NS)))


class LatestSlot(Generic[T]):
    """A bounded hand-over of capacity one: ``put`` replaces an untaken item (latest wins)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.replaced = 0

    def put(self, item: T) -> bool:
        """Offer ``item``; returns True when it replaced one that was never taken."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.replaced += 1
            self._item = item
            self._cond.notify()
            return replaced

    def get(self, timeout_s: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout_s``; None on timeout or when closed and
        empty."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """No more items will come; waiting readers wake up."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
