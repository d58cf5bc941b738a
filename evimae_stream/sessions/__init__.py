"""Sessions: our crash-safe recording format, and readers for published data.

Write with :class:`SessionWriter`; read anything with :func:`open_session`, which returns a
:class:`~evimae_stream.sessions.base.Session`.
"""

from evimae_stream.sessions.base import ImuStream, Session, VideoInfo
from evimae_stream.sessions.detect import open_session
from evimae_stream.sessions.recording import RecordingSession
from evimae_stream.sessions.writer import CameraSpec, ImuSpec, SessionWriter

__all__ = [
    "CameraSpec",
    "ImuSpec",
    "ImuStream",
    "RecordingSession",
    "Session",
    "SessionWriter",
    "VideoInfo",
    "open_session",
]
