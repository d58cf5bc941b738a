"""Reading a foreign IMU stream's channels as ours: which columns are ``ax, ay, az[, gx, gy, gz]``
and the factors that bring them to g and deg/s.

LSL streams and XDF files name their channels and units in their metadata (``<desc><channels>
<channel><label>…<unit>…``), or not at all. One rule for both: ``cols`` (from a URI or an
option: channel labels or 0-based indices, in our axis order) wins; else channels labelled like
``ax``/``acc_x``/``AccX`` (gyro ``gx``/``gyro_x``) are found by label; else the first three
channels are the acceleration. A unit in the metadata sets the factor (``g``, ``mg``, ``m/s^2``;
``deg/s``, ``rad/s``); a channel without one takes the caller's default unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.types import ACC_AXES, GYRO_AXES

STANDARD_GRAVITY = 9.80665

#: acceleration unit -> g per unit
ACC_UNITS = {"g": 1.0, "mg": 1e-3, "m/s^2": 1 / STANDARD_GRAVITY}
#: gyro unit -> deg/s per unit
GYRO_UNITS = {"deg/s": 1.0, "rad/s": 180.0 / math.pi}
_ALIASES = {
    "m/s2": "m/s^2", "ms^-2": "m/s^2", "m/s/s": "m/s^2", "meters_per_second_squared": "m/s^2",
    "dps": "deg/s", "degrees_per_second": "deg/s", "°/s": "deg/s", "rad/sec": "rad/s",
    "radians_per_second": "rad/s",
}  # fmt: skip


def unit_name(unit: str) -> str:
    """A unit as this module spells it (``m/s2`` -> ``m/s^2``)."""
    text = unit.strip().lower().replace(" ", "")
    return _ALIASES.get(text, text)


def unit_factor(unit: str, kind: str, where: str) -> float:
    """Factor to g (``kind`` acc) or deg/s (gyro) of ``unit``; InputError naming it if unknown."""
    table = ACC_UNITS if kind == "acc" else GYRO_UNITS
    name = unit_name(unit)
    if name not in table:
        raise InputError(f"{where}: unknown {kind} unit {unit!r}; use one of {', '.join(table)}")
    return table[name]


@dataclass(frozen=True)
class ChannelMap:
    """Which source columns are our channels (``index``) and their factors (``scale``)."""

    index: tuple[int, ...]
    scale: tuple[float, ...]

    @property
    def channels(self) -> tuple[str, ...]:
        return (ACC_AXES + GYRO_AXES)[: len(self.index)]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """(N, source channels) -> (N, len(index)) float32 in g and deg/s."""
        block = np.asarray(values, dtype=np.float64)[:, list(self.index)]
        return (block * np.asarray(self.scale)).astype(np.float32)


def _norm(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


def _by_label(labels: Sequence[str], kind: str) -> list[int] | None:
    """Indices of x, y, z of ``kind`` (acc/gyro) found by label, or None."""
    short, stem = ("a", "acc") if kind == "acc" else ("g", "gyr")
    found = []
    for axis in "xyz":
        hits = [
            i for i, lab in enumerate(labels)
            if (n := _norm(lab)) == short + axis or (stem in n and n.endswith(axis))
        ]  # fmt: skip
        if len(hits) != 1:
            return None
        found.append(hits[0])
    return found


def _pick_cols(cols: Sequence[str], labels: Sequence[str], where: str) -> list[int]:
    if len(cols) not in (3, 6):
        raise InputError(f"{where}: cols= takes 3 (acceleration) or 6 (then gyro) channels")
    out = []
    for c in cols:
        if c.isdigit() and int(c) < len(labels):
            out.append(int(c))
        elif c in labels:
            out.append(list(labels).index(c))
        else:
            raise InputError(
                f"{where}: no channel {c!r}; the stream has {', '.join(labels) or 'none'}"
            )
    return out


def channel_map(
    labels: Sequence[str],
    units: Sequence[str],
    where: str,
    cols: Sequence[str] | None = None,
    acc_unit: str = "g",
    gyro_unit: str = "deg/s",
) -> ChannelMap:
    """The :class:`ChannelMap` of a stream with channel ``labels`` and ``units`` (either may hold
    empty strings: not given), by the rule of the module doc."""
    n = len(labels)
    if cols:
        index = _pick_cols(cols, labels, where)
    else:
        acc = _by_label(labels, "acc")
        gyro = _by_label(labels, "gyro") if acc else None
        index = acc + (gyro or []) if acc else list(range(3))
    if n < 3 or max(index) >= n:
        raise InputError(f"{where}: {n} channels; an IMU stream needs at least 3 (acceleration)")
    scale = []
    for k, i in enumerate(index):
        kind, default = ("acc", acc_unit) if k < 3 else ("gyro", gyro_unit)
        unit = units[i] if i < len(units) and units[i] else default
        scale.append(unit_factor(unit, kind, where))
    return ChannelMap(tuple(index), tuple(scale))
