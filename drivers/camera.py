"""The head camera: OpenCV ``VideoCapture`` on an index, a device path, a video file or a URL.

The driver thread loops ``grab()`` -> stamp host time -> ``retrieve()`` -> BGR->RGB ->
``sink.push_frame``: every frame is handed over as soon as it is grabbed (the sink keeps the
latest), and the capture buffer is kept at one frame, so nothing queues up behind a slow
consumer. Live devices get the requested FOURCC (MJPG by default: USB cameras deliver full frame
rates only compressed), size and fps. A video file plays at its own fps and either loops or
ends. A failed open or read marks the stream down and the source is reopened with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from drivers.base import Driver, EndOfStream
from drivers.config import BackoffConfig
from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.sink import FrameSink

log = logging.getLogger(__name__)

#: fps assumed for a file whose container does not say
DEFAULT_FILE_FPS = 30.0


@contextlib.contextmanager
def opencv_log_silenced():
    """OpenCV's own log off while a capture opens: a source that does not open makes it print
    ``[ WARN ]`` lines of its backends' attempts, and our one-line error says it instead."""
    cv_log = getattr(getattr(cv2, "utils", None), "logging", None)
    if cv_log is None:
        yield
        return
    previous = cv_log.getLogLevel()
    cv_log.setLogLevel(cv_log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv_log.setLogLevel(previous)


def parse_camera_source(text: str | int) -> int | str:
    """``--camera`` value: an integer index, or a device path / file / URL kept as text."""
    if isinstance(text, int):
        return text
    text = text.strip()
    if text.isdigit():
        return int(text)
    if not text:
        raise InputError("--camera: empty value; pass an index (0), /dev/videoN, a file or a URL")
    return text


def source_kind(source: int | str) -> str:
    """'device' (index or /dev path), 'url' (scheme://), or 'file'."""
    if isinstance(source, int) or str(source).startswith("/dev/"):
        return "device"
    if "://" in str(source):
        return "url"
    return "file"


@dataclass(frozen=True)
class CameraConfig:
    """One camera source. ``width``/``height``/``fps``/``fourcc`` apply to live devices;
    ``loop`` and ``realtime`` (pace by the file's fps) to video files."""

    source: int | str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = "MJPG"
    loop: bool = False
    realtime: bool = True
    stall_timeout_s: float | None = 3.0
    backoff: BackoffConfig = field(default_factory=BackoffConfig)

    def __post_init__(self) -> None:
        where = f"--camera {self.source}"
        if isinstance(self.source, int) and self.source < 0:
            raise InputError(f"{where}: a camera index must be >= 0")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 0 < value <= 16384):
                raise InputError(f"{where}: {name} must be a positive integer, got {value!r}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise InputError(f"{where}: fps must be in (0, 1000], got {self.fps}")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise InputError(
                f"{where}: FOURCC must be 4 characters (e.g. MJPG), got {self.fourcc!r}"
            )
        if self.stall_timeout_s is not None and not self.stall_timeout_s > 0:
            raise InputError(f"{where}: stall_timeout_s must be positive or None")


class CameraDriver(Driver):
    """Streams one camera (or video file / URL) into a :class:`FrameSink`."""

    def __init__(
        self,
        config: CameraConfig,
        sink: FrameSink,
        clock: Clock = time.monotonic_ns,
        name: str = "camera",
    ) -> None:
        super().__init__(
            name,
            sink,
            backoff=config.backoff,
            stall_timeout_s=config.stall_timeout_s,
            clock=clock,
        )
        self.config = config
        self.kind = source_kind(config.source)
        self._cap: cv2.VideoCapture | None = None
        self._period_s = 0.0
        self._next_due = 0.0
        self.frame_size: tuple[int, int] | None = None
        self.source_fps: float | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.config.source})"

    def _open(self) -> None:
        source = self.config.source
        if self.kind == "file" and not Path(source).is_file():
            raise FileNotFoundError(f"no video file {source}")
        with opencv_log_silenced():
            cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"OpenCV cannot open {source}")
        if self.kind == "device":
            self._configure_device(cap)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.source_fps = float(fps) if fps and fps == fps and fps > 0 else None
        self.frame_size = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if self.kind == "file" and self.config.realtime:
            if self.source_fps is None:
                log.warning("%s: file has no fps; playing at %g", self.describe(), DEFAULT_FILE_FPS)
            self._period_s = 1.0 / (self.source_fps or DEFAULT_FILE_FPS)
        else:
            self._period_s = 0.0
        self._next_due = time.monotonic()
        self._cap = cap
        log.info(
            "%s: opened %dx%d at %s fps",
            self.describe(),
            *self.frame_size,
            f"{self.source_fps:g}" if self.source_fps else "?",
        )

    def _configure_device(self, cap: cv2.VideoCapture) -> None:
        cfg = self.config
        if cfg.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc))
        if cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        if cfg.fps:
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _read(self) -> bool:
        cap = self._cap
        if cap is None:
            raise OSError("capture is not open")
        if self._period_s:
            # pace a file at its own fps; if far behind, restart the schedule instead of bursting
            now = time.monotonic()
            if self._next_due > now:
                if self._stop.wait(min(self._next_due - now, 0.1)):
                    return False
                if self._next_due > time.monotonic():
                    return False
            elif now - self._next_due > self._period_s:
                self._next_due = now
            self._next_due += self._period_s
        ok = cap.grab()
        t_host_ns = self.clock()
        if not ok and self.kind == "file":
            if not self.config.loop:
                raise EndOfStream(f"end of video file {self.config.source}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok = cap.grab()
            t_host_ns = self.clock()
        if not ok:
            raise OSError(f"grab() failed on {self.config.source}")
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            raise OSError(f"retrieve() failed on {self.config.source}")
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self.sink.push_frame(t_host_ns, rgb)
        self._record(1, rgb.nbytes)
        return True

    def _close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


def probe_cameras(max_index: int = 4) -> list[tuple[int, str, tuple[int, int]]]:
    """Indices 0..max_index-1 that open and deliver a frame: (index, device path, (w, h))."""
    found = []
    for index in range(max_index):
        path = f"/dev/video{index}"
        if sys.platform.startswith("linux") and not os.path.exists(path):
            continue
        with opencv_log_silenced():
            cap = cv2.VideoCapture(index)
        try:
            if not cap.isOpened():
                continue
            ok, frame = cap.read()
            if ok and frame is not None:
                found.append((index, path, (frame.shape[1], frame.shape[0])))
        finally:
            cap.release()
    return found
