"""What every protocol parser shares: the sample type, the counters, the stream-parser interface,
and the protocol registry.

A parser turns the bytes of one sensor link into samples. It is stateful: it keeps an incomplete
frame or line between chunks, skips garbage until the next recognisable frame (resynchronises),
counts what it had to throw away, and never raises on any input.

A protocol registers itself once, by name and transport, in the module that defines its parser
(:func:`register_protocol`); :data:`PROTOCOLS` finds every module of :mod:`drivers.protocols`.
The ``--imu-ports`` URIs, the source configs' checks, the BLE driver's characteristic and
``evimae-stream devices`` read it, so a new protocol is one new file in this package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from evimae_stream.registry import Registry


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


@dataclass(frozen=True)
class Protocol:
    """One link protocol over one transport, named in URIs (``protocol=NAME``) by its parser's
    ``name``.

    ``parser``: the :class:`StreamParser` class (called with the URI's text format when the
    protocol takes ``text_options``, else with nothing); ``default``: the transport's protocol
    when a URI names none; ``notify_uuid``: the BLE characteristic it streams on;
    ``advertised``: a regular expression on a BLE device's lower-cased name that suggests this
    protocol in ``evimae-stream devices``.
    """

    transport: str
    parser: type[StreamParser]
    text_options: tuple[str, ...] = ()
    default: bool = False
    notify_uuid: str | None = None
    advertised: str | None = None

    def __post_init__(self) -> None:
        if self.transport not in PROTOCOLS:
            raise ValueError(f"protocol {self.name!r}: transport must be one of {list(PROTOCOLS)}")
        if self.transport == "ble" and not self.notify_uuid:
            raise ValueError(f"BLE protocol {self.name!r}: needs its notify_uuid")

    @property
    def name(self) -> str:
        """What URIs call it (the parser's ``name``)."""
        return self.parser.name

    def make_parser(self, text: Any = None) -> StreamParser:
        """A fresh parser (``text``: the :class:`~drivers.protocols.text_lines.TextFormat`)."""
        return self.parser(text) if self.text_options else self.parser()


#: transport -> its protocols by name (filled by the modules of :mod:`drivers.protocols`)
PROTOCOLS: dict[str, Registry[Protocol]] = {
    "serial": Registry("serial protocol", "drivers.protocols"),
    "ble": Registry("BLE protocol", "drivers.protocols"),
}


def register_protocol(protocol: Protocol) -> Protocol:
    """Add ``protocol`` to its transport's registry (once per name and transport)."""
    return PROTOCOLS[protocol.transport].register(protocol.name, protocol)


def default_protocol(transport: str) -> str:
    """The protocol a ``transport`` URI gets when it names none."""
    return next(name for name, p in PROTOCOLS[transport].items() if p.default)
