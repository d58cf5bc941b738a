"""Writing our crash-safe session format (DESIGN §5).

A session is a directory::

    session.json          rig (IMUs: placement, source, rate, units, channels; camera size/fps),
                          t0_ns (host monotonic start), wall-clock start, software/format version
    imu_<placement>.csv   t_host_ns,t_dev,ax,ay,az[,gx,gy,gz]   (t_dev empty without device time)
    video/<NNNNNNNN>.mp4  the camera stream in ~0.5 s segments named by their first frame index
    video_ts.csv          frame_index,t_host_ns
    labels.csv            start_s,end_s,label[,text]   (only when labels were added)

Crash safety: CSV rows are appended and flushed to the OS at least every ``flush_interval_s``
(on write, and by a background flusher when writes stop), and every video segment but the open
one is a whole file; so a process killed with SIGKILL keeps everything older than about one
second. Determinism: the same calls give the same bytes (pass ``wall_start`` to fix the one
wall-clock field), so seeded synthetic sessions are byte-identical across runs.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

import evimae_stream
from evimae_stream.errors import InputError
from evimae_stream.sessions.segments import SegmentWriter
from evimae_stream.types import ACC_AXES, GYRO_AXES

log = logging.getLogger(__name__)

#: Value of ``session.json["format"]`` and the version this code writes and reads.
FORMAT_NAME = "evimae-session"
FORMAT_VERSION = 1

SESSION_JSON = "session.json"
VIDEO_DIR = "video"
VIDEO_TS = "video_ts.csv"
LABELS_CSV = "labels.csv"
IMU_UNITS = {"acc": "g", "gyro": "deg/s"}

_PLACEMENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def imu_file_name(placement: str) -> str:
    """The CSV file name of one IMU stream."""
    return f"imu_{placement}.csv"


@dataclass(frozen=True)
class ImuSpec:
    """One IMU of the rig: nominal rate, channels (acc, optionally gyro) and where it came from.

    ``source`` is the sensor URI or a description (``serial:/dev/ttyUSB0``, ``synthetic``).
    """

    rate_hz: float
    channels: tuple[str, ...] = ACC_AXES
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"ImuSpec.rate_hz must be a positive number, got {self.rate_hz!r}")
        if self.channels not in (ACC_AXES, ACC_AXES + GYRO_AXES):
            raise ValueError(
                f"ImuSpec.channels must be {ACC_AXES} or {ACC_AXES + GYRO_AXES}, "
                f"got {self.channels!r}"
            )


@dataclass(frozen=True)
class CameraSpec:
    """The head camera: frame size in pixels and nominal frame rate."""

    width: int
    height: int
    fps: float
    source: str = ""

    def __post_init__(self) -> None:
        if not (int(self.width) == self.width > 0 and int(self.height) == self.height > 0):
            raise ValueError(
                f"CameraSpec size must be positive integers, got {self.width}x{self.height}"
            )
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"CameraSpec.fps must be a positive number, got {self.fps!r}")


class _Appender:
    """One append-only text file with its own lock; flushed at least every ``interval_s``."""

    def __init__(self, path: Path, header: str, interval_s: float) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._f: IO[str] | None = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._interval_ns = int(interval_s * 1e9)
        self._f.write(header + "\n")
        self._f.flush()
        self._last_flush = time.monotonic_ns()

    def write(self, text: str) -> None:
        """Append ``text`` (whole lines); call with ``lock`` held."""
        if self._f is None:
            raise ValueError(f"{self.path}: the session writer is closed")
        self._f.write(text)
        now = time.monotonic_ns()
        if now - self._last_flush >= self._interval_ns:
            self._f.flush()
            self._last_flush = now

    def flush(self) -> None:
        with self.lock:
            if self._f is not None:
                self._f.flush()
                self._last_flush = time.monotonic_ns()

    def close(self) -> None:
        with self.lock:
            if self._f is not None:
                self._f.close()
                self._f = None


def _fmt_row(t_ns: int, t_dev: float | None, values: np.ndarray) -> str:
    td = "" if t_dev is None else repr(float(t_dev))
    return f"{t_ns},{td}," + ",".join(f"{v:.9g}" for v in values.tolist()) + "\n"


class SessionWriter:
    """Records one session directory; thread-safe (one lock per file), a context manager.

    ``imu`` maps placement (``left_arm`` …) to its :class:`ImuSpec`; ``camera`` is a
    :class:`CameraSpec` or None for an IMU-only session. ``t0_ns`` is the host monotonic time of
    the session start (default: now); every timestamp given later is host monotonic ns too, and
    readers report ``(t_host_ns - t0_ns) / 1e9`` seconds. ``meta`` is extra JSON stored under
    ``session.json["meta"]`` (e.g. ``{"classes": [...]}``, which readers use as the class list).
    ``wall_start`` fixes the wall-clock start text (default: now, ISO 8601 UTC).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        imu: Mapping[str, ImuSpec] | None = None,
        camera: CameraSpec | None = None,
        t0_ns: int | None = None,
        meta: Mapping[str, Any] | None = None,
        *,
        wall_start: str | None = None,
        flush_interval_s: float = 0.5,
        segment_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        imu = dict(imu or {})
        for placement, spec in imu.items():
            if not _PLACEMENT_RE.match(placement):
                raise ValueError(f"IMU placement {placement!r}: use lower-case letters, digits, _")
            if not isinstance(spec, ImuSpec):
                raise TypeError(
                    f"IMU {placement!r}: expected an ImuSpec, got {type(spec).__name__}"
                )
        if camera is not None and not isinstance(camera, CameraSpec):
            raise TypeError(f"camera: expected a CameraSpec or None, got {type(camera).__name__}")
        if not (flush_interval_s > 0 and segment_s > 0):
            raise ValueError("flush_interval_s and segment_s must be positive")
        if (self.path / SESSION_JSON).exists():
            raise InputError(
                f"{self.path}: already holds a recorded session; choose a new directory"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.imu_specs = imu
        self.camera = camera
        self.t0_ns = int(time.monotonic_ns() if t0_ns is None else t0_ns)
        self.wall_start = (
            wall_start
            if wall_start is not None
            else datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        )
        self.meta = json.loads(json.dumps(dict(meta or {})))  # a JSON-clean private copy
        self._flush_interval_s = float(flush_interval_s)
        self._segment_ns = round(segment_s * 1e9)
        self._closed = False
        self._counts = {p: 0 for p in imu}
        self._last_t = {p: None for p in imu}
        self._has_dev: dict[str, bool] = {}  # decided by each stream's first sample
        self._imu: dict[str, _Appender] = {}
        self._ts: _Appender | None = None
        self._labels: _Appender | None = None
        self._label_text = False  # labels.csv has the text column
        self._labels_n = 0
        self._label_lock = threading.Lock()
        self._video_lock = threading.Lock()
        self._video: SegmentWriter | None = None
        self._frames = 0
        self._last_frame_t: int | None = None
        self._seg_start_t = 0
        self._write_json(complete=False)
        for placement, spec in imu.items():
            header = "t_host_ns,t_dev," + ",".join(spec.channels)
            self._imu[placement] = _Appender(
                self.path / imu_file_name(placement), header, flush_interval_s
            )
        if camera is not None:
            self._video = SegmentWriter(
                self.path / VIDEO_DIR, camera.width, camera.height, camera.fps
            )
            self._ts = _Appender(self.path / VIDEO_TS, "frame_index,t_host_ns", flush_interval_s)
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"session-flusher:{self.path.name}", daemon=True
        )
        self._flusher.start()

    # -- session.json -------------------------------------------------------------------------
    def _session_dict(self, complete: bool) -> dict:
        d: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "software_version": evimae_stream.__version__,
            "t0_ns": self.t0_ns,
            "wall_start": self.wall_start,
            "imu": {
                p: {
                    "file": imu_file_name(p),
                    "rate_hz": s.rate_hz,
                    "channels": list(s.channels),
                    "units": {k: IMU_UNITS[k] for k in ("acc", "gyro")[: len(s.channels) // 3]},
                    "source": s.source,
                }
                for p, s in self.imu_specs.items()
            },
            "camera": None,
            "meta": self.meta,
            "complete": complete,
        }
        if self.camera is not None:
            d["camera"] = {
                "width": int(self.camera.width),
                "height": int(self.camera.height),
                "fps": float(self.camera.fps),
                "source": self.camera.source,
                "video_dir": VIDEO_DIR,
                "timestamps": VIDEO_TS,
                "segment_s": self._segment_ns / 1e9,
            }
        if complete:
            d["counts"] = {
                "imu": dict(self._counts),
                "frames": self._frames,
                "labels": self._labels_n,
            }
        return d

    def _write_json(self, complete: bool) -> None:
        text = json.dumps(self._session_dict(complete), indent=2, sort_keys=True) + "\n"
        tmp = self.path / (SESSION_JSON + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path / SESSION_JSON)

    # -- streams -------------------------------------------------------------------------------
    def _check_dev(self, placement: str, has_dev: bool) -> None:
        """A stream has a device time in every row or in none (call with its lock held)."""
        want = self._has_dev.setdefault(placement, has_dev)
        if want != has_dev:
            raise ValueError(
                f"IMU {placement!r}: t_dev must be given for every sample or for none "
                f"(this stream started {'with' if want else 'without'} it)"
            )

    def _appender(self, placement: str) -> tuple[ImuSpec, _Appender]:
        try:
            return self.imu_specs[placement], self._imu[placement]
        except KeyError:
            raise ValueError(
                f"unknown IMU placement {placement!r}; this session has {sorted(self.imu_specs)}"
            ) from None

    def add_imu(self, placement: str, t_host_ns: int, values, t_dev: float | None = None) -> None:
        """Append one IMU sample: ``values`` (C,) acc in g [then gyro in deg/s]."""
        spec, app = self._appender(placement)
        v = np.asarray(values, dtype=np.float32).reshape(-1)
        if v.shape != (len(spec.channels),):
            raise ValueError(
                f"IMU {placement!r}: got {v.size} values, expected {len(spec.channels)} "
                f"({','.join(spec.channels)})"
            )
        if not np.isfinite(v).all() or (t_dev is not None and not math.isfinite(t_dev)):
            raise ValueError(f"IMU {placement!r}: non-finite value in {v.tolist()}, t_dev {t_dev}")
        t = int(t_host_ns)
        with app.lock:
            last = self._last_t[placement]
            if last is not None and t <= last:
                raise ValueError(
                    f"IMU {placement!r}: t_host_ns {t} does not increase (last {last})"
                )
            self._check_dev(placement, t_dev is not None)
            app.write(_fmt_row(t, t_dev, v))
            self._last_t[placement] = t
            self._counts[placement] += 1

    def add_imu_block(
        self,
        placement: str,
        t_host_ns: np.ndarray,
        values: np.ndarray,
        t_dev: np.ndarray | None = None,
    ) -> None:
        """Append N samples at once: ``t_host_ns`` (N,), ``values`` (N, C), ``t_dev`` (N,)."""
        spec, app = self._appender(placement)
        t = np.asarray(t_host_ns).astype(np.int64).reshape(-1)
        v = np.asarray(values, dtype=np.float32)
        n = len(t)
        if v.shape != (n, len(spec.channels)):
            raise ValueError(
                f"IMU {placement!r}: values shape {v.shape}, expected ({n}, {len(spec.channels)})"
            )
        td = None
        if t_dev is not None:
            td = np.asarray(t_dev, dtype=np.float64).reshape(-1)
            if td.shape != (n,):
                raise ValueError(f"IMU {placement!r}: t_dev shape {td.shape}, expected ({n},)")
        if not np.isfinite(v).all() or (td is not None and not np.isfinite(td).all()):
            raise ValueError(f"IMU {placement!r}: non-finite values in the block")
        if n > 1 and not (np.diff(t) > 0).all():
            raise ValueError(f"IMU {placement!r}: t_host_ns in the block does not increase")
        if n == 0:
            return
        c = len(spec.channels)
        row_fmt = "%d,%s," + ",".join(["%.9g"] * c) + "\n"
        tdev_txt = [""] * n if td is None else [repr(x) for x in td.tolist()]
        text = "".join(
            row_fmt % (ti, di, *vi)
            for ti, di, vi in zip(t.tolist(), tdev_txt, v.tolist(), strict=True)
        )
        with app.lock:
            last = self._last_t[placement]
            if last is not None and int(t[0]) <= last:
                raise ValueError(
                    f"IMU {placement!r}: t_host_ns {int(t[0])} does not increase (last {last})"
                )
            self._check_dev(placement, td is not None)
            app.write(text)
            self._last_t[placement] = int(t[-1])
            self._counts[placement] += n

    def add_frame(self, t_host_ns: int, rgb: np.ndarray) -> None:
        """Append one camera frame, RGB (H, W, 3) uint8 at the camera's size."""
        if self._video is None or self._ts is None or self.camera is None:
            raise ValueError("this session has no camera (pass camera=CameraSpec(...))")
        shape = (int(self.camera.height), int(self.camera.width), 3)
        if not isinstance(rgb, np.ndarray) or rgb.shape != shape or rgb.dtype != np.uint8:
            got = getattr(rgb, "shape", None), getattr(rgb, "dtype", type(rgb).__name__)
            raise ValueError(f"frame must be uint8 of shape {shape} (H, W, 3), got {got}")
        t = int(t_host_ns)
        with self._video_lock:
            if self._closed:
                raise ValueError(f"{self.path}: the session writer is closed")
            if self._last_frame_t is not None and t <= self._last_frame_t:
                raise ValueError(
                    f"frame t_host_ns {t} does not increase (last {self._last_frame_t})"
                )
            if not self._video.is_open or t - self._seg_start_t >= self._segment_ns:
                self._video.start(self._frames)
                self._seg_start_t = t
            self._video.write_rgb(np.ascontiguousarray(rgb))
            with self._ts.lock:
                self._ts.write(f"{self._frames},{t}\n")
            self._frames += 1
            self._last_frame_t = t

    def add_label(self, start_s: float, end_s: float, label: str, text: str | None = None) -> None:
        """Append a labelled span, in seconds from the session start; ``text``: its free-text
        narration. The first label decides the file's columns: with a text, labels.csv gets a
        fourth column ``text`` (empty for later labels without one)."""
        start_s, end_s = float(start_s), float(end_s)
        if not (math.isfinite(start_s) and math.isfinite(end_s) and end_s >= start_s):
            raise ValueError(f"label {label!r}: bad span {start_s}..{end_s}")
        for what, value in (("label", label), ("text", text)):
            if value is None and what == "text":
                continue
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise ValueError(
                    f"{what} must be a non-empty line of printable text, got {value!r}"
                )
        with self._label_lock:
            if self._closed:
                raise ValueError(f"{self.path}: the session writer is closed")
            if self._labels is None:
                self._label_text = text is not None
                header = "start_s,end_s,label" + (",text" if self._label_text else "")
                self._labels = _Appender(self.path / LABELS_CSV, header, self._flush_interval_s)
            if text is not None and not self._label_text:
                raise ValueError(
                    f"{self.path / LABELS_CSV}: has no text column (its first label had no "
                    "text); give every label a text or none"
                )
            row = [repr(start_s), repr(end_s), label] + ([text or ""] if self._label_text else [])
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(row)
            with self._labels.lock:
                self._labels.write(buf.getvalue())
            self._labels_n += 1

    # -- lifetime ------------------------------------------------------------------------------
    def _appenders(self) -> list[_Appender]:
        apps = list(self._imu.values())
        apps += [a for a in (self._ts, self._labels) if a is not None]
        return apps

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval_s):
            for app in self._appenders():
                try:
                    app.flush()
                except (OSError, ValueError) as e:  # a full disk must not kill the recorder
                    log.error("%s: flush failed: %s", app.path, e)

    def flush(self) -> None:
        """Push every buffered row to the OS now."""
        for app in self._appenders():
            app.flush()

    def close(self) -> None:
        """Finish the open video segment, close every file, mark session.json complete."""
        if self._closed:
            return
        self._stop.set()
        self._flusher.join()
        with self._video_lock, self._label_lock:
            self._closed = True
            if self._video is not None:
                self._video.close()
        for app in self._appenders():
            app.close()
        self._write_json(complete=True)

    @property
    def counts(self) -> dict:
        """Samples written per placement, frames and labels so far."""
        return {"imu": dict(self._counts), "frames": self._frames, "labels": self._labels_n}

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
