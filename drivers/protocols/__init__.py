"""Byte-stream parsers (and encoders) of the IMU link protocols; pure, no I/O.

Each protocol registers itself in :data:`~drivers.protocols.base.PROTOCOLS` (by transport and
name) in the module that defines its parser; :func:`make_parser` builds one from that registry.
Adding a protocol is adding one module here that calls
:func:`~drivers.protocols.base.register_protocol`.
"""

from __future__ import annotations

from drivers.protocols.base import (
    PROTOCOLS,
    ImuSample,
    ParseCounters,
    Protocol,
    StreamParser,
    default_protocol,
    register_protocol,
)
from drivers.protocols.text_lines import CsvParser, NusParser, TextFormat
from drivers.protocols.witmotion import WitmotionBleParser, WitmotionSerialParser

__all__ = [
    "PROTOCOLS",
    "CsvParser",
    "ImuSample",
    "NusParser",
    "ParseCounters",
    "Protocol",
    "StreamParser",
    "TextFormat",
    "WitmotionBleParser",
    "WitmotionSerialParser",
    "default_protocol",
    "make_parser",
    "register_protocol",
]


def make_parser(transport: str, protocol: str, text: TextFormat | None = None) -> StreamParser:
    """A fresh parser for ``transport`` ('serial' or 'ble') and ``protocol``."""
    return PROTOCOLS[transport].get_or_fail(protocol, transport).make_parser(text)
