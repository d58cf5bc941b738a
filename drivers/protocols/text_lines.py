"""Text-line IMU protocols: ``csv`` (serial) and ``nus`` (Nordic UART over BLE).

One sample per line; fields separated by ``,`` (also ``;``, tab or spaces); ``\\n`` or ``\\r\\n``
line ends; lines starting with ``#`` are comments (firmware banners) and are skipped silently.

``csv`` (serial, e.g. the Arduino MPU6050 sketch): ``ax,ay,az[,gx,gy,gz][,t_dev]`` — by default
the layout is learned from the field count of a run of :data:`LAYOUT_RUN` consecutive valid lines
of one count (3: ax,ay,az; 4: +t; 6: +gyro; 7: +gyro,t), so the fragment of a line that a port
opened mid-line delivers first cannot set it; the run's samples are delivered once it is complete,
the layout then stays fixed until :meth:`~TextLineParser.reset` (a reconnect), which learns it
again. ``cols=`` names columns explicitly (``_`` skips one).

``nus`` (the Bangle.js app in ``drivers/firmware/banglejs``): ``t_ms,ax,ay,az`` with ``t_ms`` the
watch's time in integer milliseconds and acceleration in g (3 decimals). Several lines may arrive
in one BLE notification and one line may be split across notifications. Also accepted: the
variants ``ax,ay,az`` (no time), ``t,ax,ay,az,gx,gy,gz``, and Espruino-printed JSON objects such
as ``{"x":0.01,"y":-0.98,"z":0.12}`` (optionally with ``"t"``/``"time"`` in ms).

Values are multiplied by ``scale`` (g per unit) and ``gscale`` (deg/s per unit); ``t`` by the
factor of ``tunit`` (``ms`` by default) to give seconds. A line whose values are not finite as
float32 after scaling (``nan``, ``1e39``) is rejected and counted, so every sample is finite.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

from drivers.protocols.base import ImuSample, Protocol, StreamParser, register_protocol
from evimae_stream.errors import InputError

#: column names a text-line protocol may map (``_`` skips a column)
CSV_COLUMN_NAMES: frozenset[str] = frozenset({"ax", "ay", "az", "gx", "gy", "gz", "t", "_"})
#: device-time units and their factor to seconds
TIME_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
#: the URI options of a text-line protocol (the fields of :class:`TextFormat`)
TEXT_OPTIONS: tuple[str, ...] = ("cols", "scale", "gscale", "tunit")

NUS_SERVICE_UUID = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX_UUID = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # write (host -> device)
NUS_TX_UUID = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # notify (device -> host)


def _fail(where: str, what: str) -> None:
    raise InputError(f"{where}: {what}")


@dataclass(frozen=True)
class TextFormat:
    """How a text-line protocol (``csv``, ``nus``) maps columns to values.

    ``cols`` names each comma-separated column (``ax,ay,az`` required, ``gx,gy,gz`` all or none,
    ``t`` at most once, ``_`` to skip); None means "decide by the field count of the first valid
    line". ``scale`` converts acceleration units to g, ``gscale`` gyro units to deg/s, ``tunit``
    is the unit of ``t``.
    """

    cols: tuple[str, ...] | None = None
    scale: float = 1.0
    gscale: float = 1.0
    tunit: str = "ms"
    where: str = "text format"

    def __post_init__(self) -> None:
        if self.cols is not None:
            cols = self.cols
            unknown = [c for c in cols if c not in CSV_COLUMN_NAMES]
            if unknown:
                _fail(
                    self.where,
                    f"cols: unknown column {unknown[0]!r}; use names from "
                    f"{','.join(sorted(CSV_COLUMN_NAMES))}",
                )
            for name in ("ax", "ay", "az", "gx", "gy", "gz", "t"):
                if cols.count(name) > 1:
                    _fail(self.where, f"cols: column {name!r} appears twice")
            if not all(a in cols for a in ("ax", "ay", "az")):
                _fail(self.where, "cols: must name ax, ay and az")
            gyro = [g in cols for g in ("gx", "gy", "gz")]
            if any(gyro) and not all(gyro):
                _fail(self.where, "cols: name all of gx, gy, gz or none")
        for name in ("scale", "gscale"):
            value = getattr(self, name)
            if not (value > 0 and value < float("inf")):
                _fail(self.where, f"{name} must be a positive number, got {value}")
        if self.tunit not in TIME_UNITS:
            _fail(self.where, f"tunit must be one of {'|'.join(TIME_UNITS)}, got {self.tunit!r}")

    @property
    def has_gyro(self) -> bool | None:
        """Whether the layout has gyro columns; None while the layout is automatic."""
        return None if self.cols is None else "gx" in self.cols


#: longest line accepted; anything longer is garbage (e.g. a binary stream at the wrong baud)
MAX_LINE_BYTES = 256
#: consecutive valid lines of one field count that fix an automatic layout
LAYOUT_RUN = 3
#: the largest finite float32
_F32_MAX = float(np.finfo(np.float32).max)

CSV_LAYOUTS: dict[int, tuple[str, ...]] = {
    3: ("ax", "ay", "az"),
    4: ("ax", "ay", "az", "t"),
    6: ("ax", "ay", "az", "gx", "gy", "gz"),
    7: ("ax", "ay", "az", "gx", "gy", "gz", "t"),
}
NUS_LAYOUTS: dict[int, tuple[str, ...]] = {
    3: ("ax", "ay", "az"),
    4: ("t", "ax", "ay", "az"),
    7: ("t", "ax", "ay", "az", "gx", "gy", "gz"),
}
_SEP = re.compile(r"[,;\s]+")
_VALUE_ORDER = ("ax", "ay", "az", "gx", "gy", "gz")


class TextLineParser(StreamParser):
    """Line-oriented parser with a column layout (explicit, or learned from a run of lines)."""

    def __init__(
        self, fmt: TextFormat, layouts: dict[int, tuple[str, ...]], allow_json: bool
    ) -> None:
        super().__init__()
        self.fmt = fmt
        self._layouts = layouts
        self._allow_json = allow_json
        self._layout: tuple[str, ...] | None = fmt.cols
        self._candidate: tuple[str, ...] | None = None  # the layout of the run being learned
        self._pending: list[ImuSample] = []  # the run's samples, delivered when it is complete
        self._buf = bytearray()
        self._discarding = False
        self._tfactor = TIME_UNITS[fmt.tunit]

    @property
    def channels(self) -> int | None:
        if self._layout is None:
            return None
        return 6 if "gx" in self._layout else 3

    def reset(self) -> None:
        """Forget partial input and, when the layout is automatic, the layout (a reconnected
        sensor may have been re-flashed or swapped)."""
        self._buf.clear()
        self._discarding = False
        if self.fmt.cols is None:
            self._layout = None
            self._start_run(None)

    def _start_run(self, layout: tuple[str, ...] | None) -> None:
        """Begin learning ``layout``; the unconfirmed samples of the previous run are rejects."""
        self.counters.bad_parse += len(self._pending)
        self._pending = []
        self._candidate = layout

    def _feed(self, data: bytes) -> list[ImuSample]:
        out: list[ImuSample] = []
        self._buf += data
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(self._buf[start:end])
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            out += self._line(line)
        del self._buf[:start]
        if len(self._buf) > MAX_LINE_BYTES:
            # no line end in sight: drop it and everything up to the next newline
            if not self._discarding:
                self.counters.bad_parse += 1
            self._discarding = True
            self._buf.clear()
        return out

    def _line(self, raw: bytes) -> list[ImuSample]:
        """The samples one line completes: none, its own, or the run it completes."""
        text_b = raw.strip(b" \t\r\x00")
        if not text_b or text_b.startswith(b"#"):
            return []
        try:
            text = text_b.decode("ascii")
        except UnicodeDecodeError:
            self.counters.bad_parse += 1
            return []
        if self._allow_json and text.startswith("{"):
            fields = self._json_fields(text)
        else:
            fields = self._csv_fields(text)
        sample = None if fields is None else self._sample(fields[0])
        if sample is None:
            self.counters.bad_parse += 1
            return []
        if self._layout is not None:
            return [sample]
        layout = fields[1]
        if layout != self._candidate:
            self._start_run(layout)
        self._pending.append(sample)
        if len(self._pending) < LAYOUT_RUN:
            return []
        self._layout = layout
        run, self._pending, self._candidate = self._pending, [], None
        return run

    def _csv_fields(self, text: str) -> tuple[dict[str, float], tuple[str, ...]] | None:
        parts = [p for p in _SEP.split(text) if p]
        layout = self._layout or self._layouts.get(len(parts))
        if layout is None or len(parts) != len(layout):
            return None
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            return None
        named = {name: x for name, x in zip(layout, numbers, strict=True) if name != "_"}
        return named, layout

    def _json_fields(self, text: str) -> tuple[dict[str, float], tuple[str, ...]] | None:
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        named: dict[str, float] = {}
        try:
            for key in ("x", "y", "z"):
                named["a" + key] = float(obj[key])
            for key in ("t", "time", "ms"):
                if key in obj:
                    named["t"] = float(obj[key])
                    break
        except (KeyError, TypeError, ValueError):
            return None
        layout = ("t", "ax", "ay", "az") if "t" in named else ("ax", "ay", "az")
        return named, layout

    def _sample(self, named: dict[str, float]) -> ImuSample | None:
        """The sample of one line's values (None: not finite, or not the learned layout)."""
        if not all(math.isfinite(x) for x in named.values()):
            return None
        gyro = "gx" in named
        if self._layout is not None and gyro != (self.channels == 6):
            return None
        keys = _VALUE_ORDER if gyro else _VALUE_ORDER[:3]
        values = np.array([named[k] for k in keys], dtype=np.float64)
        values[:3] *= self.fmt.scale
        values[3:] *= self.fmt.gscale
        if not (np.abs(values) <= _F32_MAX).all():  # finite in float64, infinite in float32
            return None
        t = named.get("t")
        return ImuSample(values.astype(np.float32), None if t is None else t * self._tfactor)


class CsvParser(TextLineParser):
    """``csv`` over serial: ``ax,ay,az[,gx,gy,gz][,t_dev]`` (see the module docstring)."""

    name = "csv"

    def __init__(self, fmt: TextFormat | None = None) -> None:
        super().__init__(fmt or TextFormat(), CSV_LAYOUTS, allow_json=False)


class NusParser(TextLineParser):
    """``nus`` over BLE: ``t_ms,ax,ay,az`` lines (and the variants in the module docstring)."""

    name = "nus"

    def __init__(self, fmt: TextFormat | None = None) -> None:
        super().__init__(fmt or TextFormat(), NUS_LAYOUTS, allow_json=True)


def format_csv_line(acc_g, gyro_dps=None, t_dev: float | None = None) -> str:
    """One ``csv`` line as the Arduino sketch prints it: g and deg/s with 4/2 decimals, then the
    device time in integer milliseconds."""
    fields = [f"{x:.4f}" for x in acc_g]
    if gyro_dps is not None:
        fields += [f"{x:.2f}" for x in gyro_dps]
    if t_dev is not None:
        fields.append(str(round(t_dev * 1000)))
    return ",".join(fields) + "\r\n"


def format_nus_line(t_ms: int, acc_g) -> str:
    """One ``nus`` line as the Bangle.js app prints it: ``t_ms,ax,ay,az`` (g, 3 decimals)."""
    return f"{int(t_ms)},{acc_g[0]:.3f},{acc_g[1]:.3f},{acc_g[2]:.3f}\n"


def encode_csv(samples, t_dev=None, gyro=None) -> bytes:
    """Many ``csv`` lines: ``samples`` (N,3) g, optional ``gyro`` (N,3) deg/s, ``t_dev`` (N,) s."""
    lines = []
    for i, acc in enumerate(samples):
        lines.append(
            format_csv_line(
                acc,
                None if gyro is None else gyro[i],
                None if t_dev is None else float(t_dev[i]),
            )
        )
    return "".join(lines).encode("ascii")


def encode_nus(samples, t_ms) -> bytes:
    """Many ``nus`` lines: ``samples`` (N,3) g, ``t_ms`` (N,) integer milliseconds."""
    return "".join(
        format_nus_line(int(t), acc) for t, acc in zip(t_ms, samples, strict=True)
    ).encode("ascii")


register_protocol(Protocol("serial", CsvParser, text_options=TEXT_OPTIONS, default=True))
register_protocol(
    Protocol(
        "ble",
        NusParser,
        text_options=TEXT_OPTIONS,
        default=True,
        notify_uuid=NUS_TX_UUID,
        advertised=r"bangle|puck|espruino",
    )
)
