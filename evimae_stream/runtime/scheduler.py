"""Window timing: the latest-wins hand-over between the scheduler and inference. The ticks fall
on the window grid of :mod:`evimae_stream.window` (tick ``k`` = 1, 2, … at ``origin + k·stride``,
:func:`~evimae_stream.window.tick_ns`), the grid training cuts recordings on too. The buffers
read the tick time from a :class:`~evimae_stream.clock.VirtualClock` the scheduler moves.

Live, the scheduler wakes a small guard
after each tick (so samples stamped just before it have been handed over), releases the gates up
to the tick and assembles the window. If it wakes more than a stride late it jumps to the newest
due tick and counts the ticks it skipped; if inference has not taken the previous window yet, the
new one replaces it (latest wins) and the replaced one is counted as skipped.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


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
