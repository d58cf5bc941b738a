"""The one reader interface every session source implements.

A *session* is a time-aligned recording: up to four IMU streams (by placement), an optional
head-camera video, optional labels. Our own recordings, WEAR subjects, CMU-MMAC sessions and
synthetic wearers all open as a :class:`Session`, so replay, evaluation and training never care
where the data came from.

Time base: every timestamp a reader returns is float64 seconds from the session start
(``t = 0`` is the session's first instant, ``t0_ns`` maps it back to host nanoseconds where the
source has them).

Each reader registers itself once in :data:`READERS` (a :class:`SessionReader`: its kind, how
it recognises a path, the options it takes) in the module that defines it;
:func:`~evimae_stream.sessions.detect.open_session` asks them in turn, so a new session format is
one new module in this package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evimae_stream.registry import Registry
from evimae_stream.truth import label_at
from evimae_stream.types import Segment


@dataclass
class ImuStream:
    """One IMU's samples.

    ``t``: (N,) float64 seconds from session start, strictly increasing.
    ``values``: (N, C) float32; columns named by ``channels`` (acceleration ``ax, ay, az`` in g
    first, then gyro ``gx, gy, gz`` in deg/s when present).
    ``t_dev``: (N,) float64 device timestamps in the device's own units, or None.
    ``rate_hz``: the nominal sample rate.
    """

    placement: str
    t: np.ndarray
    values: np.ndarray
    rate_hz: float
    channels: tuple[str, ...] = ("ax", "ay", "az")
    t_dev: np.ndarray | None = None

    @property
    def acc(self) -> np.ndarray:
        """(N, 3) acceleration in g."""
        return self.values[:, :3]


@dataclass
class VideoInfo:
    """What a session's video is: frame count, nominal rate, frame size (width, height)."""

    num_frames: int
    fps: float
    width: int
    height: int
    path: Path | None = None


@dataclass
class Session(ABC):
    """A recording opened for reading. Use as a context manager, or call :meth:`close`.

    Subclasses fill the fields on open and implement the frame access methods.
    """

    path: Path
    kind: str  # the reader's kind (see READERS)
    imu: dict[str, ImuStream] = field(default_factory=dict)
    video: VideoInfo | None = None
    labels: list[Segment] = field(default_factory=list)
    classes: list[str] | None = None
    t0_ns: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from the session start to its last sample or frame."""
        ends = [float(s.t[-1]) for s in self.imu.values() if len(s.t)]
        if self.video is not None and self.video.num_frames:
            ends.append(float(self.frame_times()[-1]))
        return max(ends, default=0.0)

    @property
    def has_video(self) -> bool:
        return self.video is not None and self.video.num_frames > 0

    def frame_times(self) -> np.ndarray:
        """(F,) float64 seconds from session start of every video frame; empty without video."""
        return np.empty(0, dtype=np.float64)

    def frame_at(self, t: float) -> np.ndarray:
        """The RGB frame (H, W, 3) uint8 nearest in time to ``t`` (random access)."""
        raise NotImplementedError(f"{self.kind} session {self.path} has no video")

    def iter_frames(
        self, start_s: float = 0.0, end_s: float | None = None
    ) -> Iterator[tuple[float, np.ndarray]]:
        """Frames in order from ``start_s`` to ``end_s`` as ``(t, rgb)`` (fast sequential path)."""
        return iter(())

    def label_at(self, t: float) -> str | None:
        """The label whose segment contains ``t``, or None."""
        return label_at(self.labels, t)

    @abstractmethod
    def close(self) -> None:
        """Release open files and decoders."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class SessionReader:
    """One session format: ``kind`` (the :attr:`Session.kind` it opens), ``detect(path)`` (True
    when the path is in this format; readers' formats must not overlap), ``open(path, **hints)``,
    the ``hints`` (options) it takes, and ``describes``: what such a path is, for the error text
    of a path no reader recognises."""

    kind: str
    detect: Callable[[Path], bool]
    open: Callable[..., Session]
    describes: str
    hints: tuple[str, ...] = ()


#: session kind -> its reader (each reader module of this package registers its own)
READERS: Registry[SessionReader] = Registry("session format", "evimae_stream.sessions")


def register_reader(reader: SessionReader) -> SessionReader:
    """Add ``reader`` to :data:`READERS` under its kind."""
    return READERS.register(reader.kind, reader)
