"""Byte-stream parsers (and encoders) of the IMU link protocols; pure, no I/O.

:func:`make_parser` picks the parser for a (transport, protocol) pair from a source config.
"""

from __future__ import annotations

from drivers.config import TextFormat
from drivers.protocols.base import ImuSample, ParseCounters, StreamParser
from drivers.protocols.text_lines import CsvParser, NusParser
from drivers.protocols.witmotion import WitmotionBleParser, WitmotionSerialParser

__all__ = [
    "CsvParser",
    "ImuSample",
    "NusParser",
    "ParseCounters",
    "StreamParser",
    "WitmotionBleParser",
    "WitmotionSerialParser",
    "make_parser",
]


def make_parser(transport: str, protocol: str, text: TextFormat | None = None) -> StreamParser:
    """A fresh parser for ``transport`` ('serial' or 'ble') and ``protocol``."""
    if transport == "serial" and protocol == "csv":
        return CsvParser(text)
    if transport == "serial" and protocol == "witmotion":
        return WitmotionSerialParser()
    if transport == "ble" and protocol == "nus":
        return NusParser(text)
    if transport == "ble" and protocol == "witmotion":
        return WitmotionBleParser()
    raise ValueError(f"no parser for protocol {protocol!r} over {transport}")
