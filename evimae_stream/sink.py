"""Where drivers put what they read: the narrow interface between ``drivers`` and the buffers.

Drivers stamp every sample once with the host clock (``time.monotonic_ns()`` or the virtual clock
of a replay) and hand it to a sink; the sink (a ring in :mod:`evimae_stream.rings`) owns the time
mapping, storage and per-stream counters. A driver reports its link state with ``mark_down`` /
``mark_up`` so health and the missing-modality policy see it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ImuSink(Protocol):
    """Receives one IMU stream's samples, in arrival order."""

    def push(self, t_host_ns: int, values: np.ndarray, t_dev: float | None = None) -> None:
        """One sample: ``values`` (C,) float32, acceleration in g then gyro in deg/s.

        ``t_dev`` is the device's own timestamp in seconds (or its sample counter divided by the
        nominal rate) when the device sends one; None when it does not.
        """

    def mark_down(self, reason: str) -> None:
        """The link is lost (the driver is reconnecting)."""

    def mark_up(self) -> None:
        """The link is (back) up."""


class FrameSink(Protocol):
    """Receives camera frames, in arrival order."""

    def push_frame(self, t_host_ns: int, frame: np.ndarray) -> None:
        """One RGB frame (H, W, 3) uint8, stamped right after grab."""

    def mark_down(self, reason: str) -> None:
        """The camera stopped delivering."""

    def mark_up(self) -> None:
        """The camera delivers again."""
