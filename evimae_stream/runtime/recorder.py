"""``--record DIR``: a session (our format) of exactly what the sensors delivered while
recognising — raw host arrival stamps and device times, every channel sent (gyro too), frames.

The writer is created once every configured stream has delivered (so channel counts and the frame
size are known), or :data:`SETTLE_S` seconds of stream time after the start, whichever is first;
what arrived before is kept and written then. The session's ``t0_ns`` is the run's tick origin, so
``--replay DIR --speed max`` windows at the same host times as the live run did.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.runtime.output_lock import lock_output
from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter
from evimae_stream.streams import StreamSpec
from evimae_stream.types import ACC_AXES, GYRO_AXES

log = logging.getLogger(__name__)

#: seconds of stream time to wait for every stream's first sample before writing anyway
SETTLE_S = 3.0


class GateRecorder:
    """Tees the samples the gates release into a :class:`SessionWriter` (thread-safe through the
    writer). ``streams``: what is recorded; its camera fps may be updated (:attr:`streams`) until
    the writer opens."""

    def __init__(
        self, path: str | Path, t0_ns: int, streams: StreamSpec, meta: dict | None = None
    ) -> None:
        self.path = Path(path)
        self._lock_fd = self._lock(self.path)
        self.t0_ns = int(t0_ns)
        self.streams = streams
        self.meta = dict(meta or {})
        self._pending: list[tuple] = []
        self._channels: dict[str, int] = {}
        self._frame_size: tuple[int, int] | None = None
        self.writer: SessionWriter | None = None
        self.dropped_channels = 0
        self.dropped_bad = 0
        self.nudged = 0
        self._last: dict[str, int] = {}
        self._last_ns = self.t0_ns
        #: why the recording stopped (one line), or None while it works
        self.failed: str | None = None

    @staticmethod
    def _lock(path: Path) -> int:
        """The directory, made and locked for this run (:mod:`~.output_lock`)."""
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise InputError(f"--record {path}: cannot create it ({exc.strerror})") from None
        try:
            lock_output(fd, "--record", path)
        except InputError:
            os.close(fd)
            raise
        return fd

    def _ready(self, t_ns: int) -> bool:
        seen_all = set(self._channels) >= set(self.streams.imu_rates) and (
            not self.streams.camera or self._frame_size is not None
        )
        return seen_all or (t_ns - self.t0_ns) / 1e9 >= SETTLE_S

    def _open(self) -> None:
        streams = self.streams
        imu = {}
        for p, rate in streams.imu_rates.items():
            c = self._channels.get(p, 3)
            channels = ACC_AXES + GYRO_AXES if c >= 6 else ACC_AXES
            imu[p] = ImuSpec(rate_hz=rate, channels=channels, source=streams.imu_uris.get(p, ""))
        cam = None
        if streams.camera_fps is not None and self._frame_size is not None:
            w, h = self._frame_size
            cam = CameraSpec(width=w, height=h, fps=streams.camera_fps, source=streams.camera_uri)
        elif streams.camera_fps is not None:
            log.warning(
                "--record: no camera frame in the first %.0f s; recording IMUs only", SETTLE_S
            )
        self.writer = SessionWriter(
            self.path, imu=imu, camera=cam, t0_ns=self.t0_ns, meta=self.meta
        )
        pending, self._pending = self._pending, []
        for item in pending:
            self._write(*item)
        log.info("recording to %s", self.path)

    def _stamp(self, stream: str, t: int) -> int:
        """Strictly increasing per stream, as the format needs: samples of one batched read
        share an arrival stamp, so the later ones move 1 ns on (counted in ``nudged``)."""
        last = self._last.get(stream)
        if last is not None and t <= last:
            t = last + 1
            self.nudged += 1
        self._last[stream] = t
        return t

    def _write(self, kind: str, *args) -> None:
        w = self.writer
        assert w is not None
        if kind == "imu":
            p, t, values, t_dev = args
            if not np.isfinite(values).all() or (t_dev is not None and not np.isfinite(t_dev)):
                self.dropped_bad += 1
                return
            spec = w.imu_specs.get(p)
            if spec is None:
                return
            n = len(spec.channels)
            if len(values) < n:
                self.dropped_channels += 1
                return
            w.add_imu(p, self._stamp(p, t), values[:n], t_dev)
        elif w.camera is not None:
            t, frame = args
            cam = w.camera
            if frame.shape != (cam.height, cam.width, 3) or frame.dtype != np.uint8:
                self.dropped_bad += 1
                return
            w.add_frame(self._stamp("camera", t), frame)

    def _add(self, item: tuple, t_ns: int) -> None:
        self._last_ns = t_ns
        if self.failed is not None:
            return
        try:
            if self.writer is None:
                self._pending.append(item)
                if self._ready(t_ns):
                    self._open()
            else:
                self._write(*item)
        except OSError as exc:
            self._fail(exc, t_ns)

    def _fail(self, exc: OSError, t_ns: int) -> None:
        """The recording stops (a full disk, a removed drive); recognition goes on."""
        self.failed = (
            f"--record {self.path}: recording stopped {(t_ns - self.t0_ns) / 1e9:.1f} s into "
            f"the run ({exc.strerror or exc}); recognition goes on, the session keeps what was "
            "written before; free space or record elsewhere"
        )
        log.error("%s", self.failed)
        self._pending = []
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()

    def add_imu(self, placement: str, t_ns: int, values: np.ndarray, t_dev: float | None) -> None:
        """One IMU sample as the sensor sent it."""
        self._channels.setdefault(placement, len(values))
        self._add(("imu", placement, t_ns, values, t_dev), t_ns)

    def add_frame(self, t_ns: int, frame: np.ndarray) -> None:
        """One camera frame (RGB) as grabbed."""
        if self._frame_size is None:
            self._frame_size = (int(frame.shape[1]), int(frame.shape[0]))
        self._add(("frame", t_ns, frame), t_ns)

    def close(self) -> None:
        """Write what is pending and close the session (a recording that failed says so again,
        so the line is not lost above the summary)."""
        try:
            self._close_writer()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _close_writer(self) -> None:
        if self.failed is not None:
            log.error("%s", self.failed)
            return
        try:
            if self.writer is None and self._pending:
                self._open()
            if self.writer is not None:
                self.writer.close()
        except OSError as exc:
            self._fail(exc, self._last_ns)
