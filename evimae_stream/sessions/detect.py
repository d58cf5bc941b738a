"""``open_session``: open any supported session source by looking at what the path is."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.sessions.base import Session
from evimae_stream.sessions.recording import RecordingSession
from evimae_stream.sessions.writer import SESSION_JSON

log = logging.getLogger(__name__)


def open_session(path: str | os.PathLike, **hints) -> Session:
    """Open a session of any supported kind; ``.kind`` says which.

    - a directory with ``session.json``: our recording format (``"recording"``).

    Raises InputError naming the path when nothing is recognised.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir() and (p / SESSION_JSON).is_file():
        return RecordingSession.open(p)
    raise InputError(
        f"{p}: not a recognised session (expected a recorded session directory with "
        f"{SESSION_JSON}, a WEAR sbj_N.csv or a CMU-MMAC session CSV)"
    )
