"""Recording what the monitor sees: the buffer's rings copied into a session, off the GUI thread.

:class:`RingRecorder` polls the rings of a :class:`~evimae_stream.buffer.StreamBuffer` a few times a
second in its own thread and appends every new sample and frame to a
:class:`~evimae_stream.sessions.SessionWriter`, so it works over any source that fills a buffer
(live drivers, replay) without touching the drivers. What it records (rates, sources, the camera's
fps) is the rig's one :class:`~evimae_stream.streams.StreamSpec`, as for the runtime's
``--record``. The IMU rows hold the ring's host timeline (after the time map, strictly
increasing) with no device time; frames keep their grab stamps. The rings hold 4 s of video and
20 s of IMU, far more than one poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path

from evimae_stream.buffer import StreamBuffer
from evimae_stream.errors import InputError
from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter
from evimae_stream.streams import StreamSpec
from evimae_stream.types import ACC_AXES, GYRO_AXES

log = logging.getLogger(__name__)

#: seconds between two polls of the rings
POLL_S = 0.2


def new_session_dir(folder: str | Path) -> Path:
    """A fresh session directory name inside ``folder`` (``session-YYYYmmdd-HHMMSS[-N]``)."""
    base = Path(folder)
    if base.exists() and not base.is_dir():
        raise InputError(f"record folder {base}: exists and is not a directory; choose a folder")
    stem = "session-" + datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base / stem, 1
    while path.exists():
        n += 1
        path = base / f"{stem}-{n}"
    return path


class RingRecorder:
    """Copies new ring contents into a session directory every :data:`POLL_S` seconds."""

    def __init__(self, buffer: StreamBuffer, writer: SessionWriter) -> None:
        self.buffer = buffer
        self.writer = writer
        self.path = writer.path
        self.errors = 0
        self._next = {p: writer.t0_ns for p in writer.imu_specs}
        self._next_frame = writer.t0_ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gui-recorder", daemon=True)

    @classmethod
    def start(cls, streams: StreamSpec, buffer: StreamBuffer, folder: str | Path) -> RingRecorder:
        """Open a new session in ``folder`` for ``streams`` (the rig's one description: the
        IMUs' rates and sources, the camera's fps and source) and start copying ``buffer``'s
        rings from now on. The frame size is the frames' own (what is written), else the
        spec's."""
        path = new_session_dir(folder)
        n = buffer.config.imu_channels
        if n not in (3, 6):
            raise InputError(f"record {path}: the rig has {n} IMU channels; sessions hold 3 or 6")
        channels = ACC_AXES if n == 3 else ACC_AXES + GYRO_AXES
        imu = {
            p: ImuSpec(rate_hz=rate, channels=channels, source=streams.imu_uris.get(p, ""))
            for p, rate in streams.imu_rates.items()
            if p in buffer.imu
        }
        camera = None
        if streams.camera_fps is not None and buffer.camera is not None:
            latest = buffer.camera.latest()
            size = streams.camera_size
            if latest is not None:
                size = (int(latest[1].shape[1]), int(latest[1].shape[0]))
            if size is not None:
                w, h = size
                camera = CameraSpec(w, h, fps=streams.camera_fps, source=streams.camera_uri)
        try:
            writer = SessionWriter(path, imu=imu, camera=camera, t0_ns=buffer.clock())
        except OSError as exc:
            raise InputError(f"record folder {path}: cannot write ({exc.strerror})") from None
        rec = cls(buffer, writer)
        rec._thread.start()
        log.info("recording to %s", path)
        return rec

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        """Append everything that arrived since the last poll."""
        for p, ring in self.buffer.imu.items():
            snap = ring.snapshot(self._next[p], None)
            if len(snap.t_ns):
                self._write(lambda p=p, s=snap: self.writer.add_imu_block(p, s.t_ns, s.values))
                self._next[p] = int(snap.t_ns[-1]) + 1
        cam = self.buffer.camera
        if cam is not None and self.writer.camera is not None:
            times, frames = cam.snapshot(self._next_frame, None)
            for t, frame in zip(times.tolist(), frames, strict=True):
                self._write(lambda t=t, f=frame: self.writer.add_frame(t, f))
            if len(times):
                self._next_frame = int(times[-1]) + 1

    def _write(self, fn) -> None:
        try:
            fn()
        except (ValueError, OSError) as exc:
            self.errors += 1
            if self.errors == 1:
                log.error("%s: cannot record: %s (further errors counted)", self.path, exc)

    def close(self) -> None:
        """Write what is left and finish the session (blocks: call off the GUI thread)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        started = time.monotonic()
        self.poll()
        self.writer.close()
        log.info("recorded %s (%.2f s to close)", self.path, time.monotonic() - started)
