"""Sessions: our crash-safe recording format, and readers for published data.

Write with :class:`SessionWriter`; read anything with :func:`open_session`, which returns a
:class:`~evimae_stream.sessions.base.Session` whose ``.kind`` names the reader that opened it (one
of :data:`~evimae_stream.sessions.base.READERS`, each registered by its own module). EVI-MAE
release clips are read with :class:`ReleaseClipDataset`.
"""

from evimae_stream.sessions.base import ImuStream, Session, VideoInfo
from evimae_stream.sessions.cmummac import CmuMmacSession
from evimae_stream.sessions.detect import open_session
from evimae_stream.sessions.recording import RecordingSession
from evimae_stream.sessions.release import ReleaseClip, ReleaseClipDataset
from evimae_stream.sessions.wear import WEAR_CLASSES, WearSession
from evimae_stream.sessions.writer import CameraSpec, ImuSpec, SessionWriter

__all__ = [
    "WEAR_CLASSES",
    "CameraSpec",
    "CmuMmacSession",
    "ImuSpec",
    "ImuStream",
    "RecordingSession",
    "ReleaseClip",
    "ReleaseClipDataset",
    "Session",
    "SessionWriter",
    "VideoInfo",
    "WearSession",
    "open_session",
]
