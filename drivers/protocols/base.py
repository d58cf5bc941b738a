"""What every protocol parser shares: the sample type, the counters, the stream-parser interface.

A parser turns the bytes of one sensor link into samples. It is stateful: it keeps an incomplete
frame or line between chunks, skips garbage until the next recognisable frame (resynchronises),
counts what it had to throw away, and never raises on any input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class ImuSample(NamedTuple):
    """One decoded sample: ``values`` (C,) float32 — acceleration in g, then gyro in deg/s — and
    the device's own time in seconds when the protocol carries one."""

    values: np.ndarray
    t_dev: float | None


@dataclass
class ParseCounters:
    """Running totals of one parser (read by the driver for its stats)."""

    bytes: int = 0
    samples: int = 0
    bad_checksum: int = 0
    bad_parse: int = 0

    @property
    def bad_frames(self) -> int:
        """All rejected frames or lines."""
        return self.bad_checksum + self.bad_parse


class StreamParser(ABC):
    """Bytes in, samples out, in arrival order; partial input is kept for the next call."""

    #: name used in URIs (``protocol=...``)
    name: str = ""

    def __init__(self) -> None:
        self.counters = ParseCounters()

    @property
    @abstractmethod
    def channels(self) -> int | None:
        """Values per sample (3 = accel, 6 = accel + gyro); None until the layout is known."""

    def feed(self, data: bytes) -> list[ImuSample]:
        """Consume one chunk (any length, any split); return the samples it completed."""
        self.counters.bytes += len(data)
        samples = self._feed(bytes(data))
        self.counters.samples += len(samples)
        return samples

    @abstractmethod
    def _feed(self, data: bytes) -> list[ImuSample]: ...

    @abstractmethod
    def reset(self) -> None:
        """Forget partial input (after a reconnect, the next bytes start a new stream)."""
