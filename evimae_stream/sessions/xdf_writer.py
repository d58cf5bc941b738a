"""Writing XDF (Extensible Data Format, the Lab Streaming Layer's recording format).

Why our own writer: PyPI has readers (pyxdf, which the ``[lsl]`` extra installs) but no kept
Python writer; the format is small and documented (github.com/sccn/xdf/wiki/Specifications):
the magic ``XDF:``, then chunks ``[NumLengthBytes][Length][Tag][Content]`` — FileHeader (1),
StreamHeader (2), Samples (3), ClockOffset (4), Boundary (5), StreamFooter (6) — with
little-endian numbers and XML headers (LSL's stream ``info``).

Crash safety: every chunk is written whole and the file flushed after each :meth:`XdfWriter.
write` call, so a writer killed mid-recording leaves whole chunks (at worst the last one cut;
:func:`scan_chunks` finds where the whole chunks end) and no footers, which readers tolerate.
"""

from __future__ import annotations

import struct
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from evimae_stream.errors import InputError

MAGIC = b"XDF:"
FILE_HEADER, STREAM_HEADER, SAMPLES, CLOCK_OFFSET, BOUNDARY, STREAM_FOOTER = 1, 2, 3, 4, 5, 6
BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
#: XDF channel formats -> numpy little-endian dtypes (``string`` values are UTF-8)
FORMATS = {
    "float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2", "int32": "<i4",
    "int64": "<i8",
}  # fmt: skip
#: samples chunks between boundary chunks (a reader of a damaged file resynchronises at one)
BOUNDARY_EVERY = 10


def varlen(n: int) -> bytes:
    """XDF's variable-length integer: one byte saying 1, 4 or 8, then the number."""
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 2**32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def chunk(tag: int, content: bytes) -> bytes:
    """One chunk: its length (tag included), the tag, the content."""
    return varlen(len(content) + 2) + struct.pack("<H", tag) + content


def xml_text(root: ET.Element) -> bytes:
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8")


def info_xml(fields: Mapping[str, object], desc: ET.Element | None = None) -> ET.Element:
    """An ``<info>`` element with one child per field (and ``desc`` appended)."""
    root = ET.Element("info")
    for key, value in fields.items():
        ET.SubElement(root, key).text = str(value)
    if desc is not None:
        root.append(desc)
    return root


def samples_content(stream_id: int, fmt: str, stamps: np.ndarray, values) -> bytes:
    """The content of a Samples chunk: every sample with its own timestamp."""
    parts = [struct.pack("<I", stream_id), varlen(len(stamps))]
    if fmt == "string":
        for t, row in zip(stamps, values, strict=True):
            parts.append(b"\x08" + struct.pack("<d", float(t)))
            for text in row:
                raw = str(text).encode("utf-8")
                parts.append(varlen(len(raw)) + raw)
        return b"".join(parts)
    block = np.ascontiguousarray(values, dtype=FORMATS[fmt]).reshape(len(stamps), -1)
    layout = [("n", "u1"), ("t", "<f8"), ("v", block.dtype, block.shape[1])]
    rec = np.empty(len(stamps), dtype=layout)
    rec["n"], rec["t"], rec["v"] = 8, stamps, block
    return b"".join(parts) + rec.tobytes()


class XdfWriter:
    """An XDF file being written: :meth:`add_stream`, :meth:`write` blocks, :meth:`close`
    (writes the footers). ``header``: extra fields of the file header. Thread-safe."""

    def __init__(self, path: str | Path, header: Mapping[str, object] | None = None) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO = self.path.open("wb")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror})") from None
        self._lock = threading.Lock()
        self._streams: dict[int, dict] = {}
        self._chunks = 0
        info = info_xml({"version": "1.0", **(header or {})})
        self._put(MAGIC + chunk(FILE_HEADER, xml_text(info)))

    def _put(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()

    def add_stream(self, info: ET.Element) -> int:
        """Add a stream described by its ``<info>`` (name, type, channel_count, nominal_srate,
        channel_format, source_id, desc); returns its stream id."""
        with self._lock:
            sid = len(self._streams) + 1
            fmt = info.findtext("channel_format", "float32")
            if fmt != "string" and fmt not in FORMATS:
                raise ValueError(f"XDF stream {sid}: unknown channel_format {fmt!r}")
            self._streams[sid] = {"fmt": fmt, "first": None, "last": None, "count": 0}
            self._put(chunk(STREAM_HEADER, struct.pack("<I", sid) + xml_text(info)))
            return sid

    def write(self, stream_id: int, stamps: Sequence[float], values) -> None:
        """Append samples (``stamps`` (N,) seconds, ``values`` (N, channels)) to a stream."""
        stamps = np.asarray(stamps, dtype=np.float64).reshape(-1)
        if not len(stamps):
            return
        with self._lock:
            s = self._streams[stream_id]
            data = chunk(SAMPLES, samples_content(stream_id, s["fmt"], stamps, values))
            self._chunks += 1
            if self._chunks % BOUNDARY_EVERY == 0:
                data += chunk(BOUNDARY, BOUNDARY_UUID)
            self._put(data)
            s["first"] = float(stamps[0]) if s["first"] is None else s["first"]
            s["last"], s["count"] = float(stamps[-1]), s["count"] + len(stamps)

    def close(self) -> None:
        """Write every stream's footer and close the file."""
        with self._lock:
            if self._fh.closed:
                return
            for sid, s in self._streams.items():
                footer = info_xml({
                    "first_timestamp": repr(s["first"] or 0.0),
                    "last_timestamp": repr(s["last"] or 0.0),
                    "sample_count": s["count"],
                })  # fmt: skip
                ET.SubElement(footer, "clock_offsets")
                self._put(chunk(STREAM_FOOTER, struct.pack("<I", sid) + xml_text(footer)))
            self._fh.close()

    def __enter__(self) -> XdfWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scan_chunks(data: bytes) -> tuple[int, set[int]]:
    """(how many leading bytes of an XDF file are whole chunks, the tags seen in them): a
    killed writer may have cut the last chunk; (0, set()) if it is not XDF."""
    if not data.startswith(MAGIC):
        return 0, set()
    pos = end = len(MAGIC)
    tags: set[int] = set()
    while pos < len(data):
        width = {1: "<B", 4: "<I", 8: "<Q"}.get(data[pos])
        if width is None or pos + 1 + struct.calcsize(width) + 2 > len(data):
            break
        size = struct.unpack_from(width, data, pos + 1)[0]
        head = pos + 1 + struct.calcsize(width)
        if size < 2 or head + size > len(data):
            break
        tags.add(struct.unpack_from("<H", data, head)[0])
        pos = end = head + size
    return end, tags
