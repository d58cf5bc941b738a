"""``open_session``: open any supported session source by looking at what the path is."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.sessions.base import Session
from evimae_stream.sessions.cmummac import CmuMmacSession, is_cmummac_csv
from evimae_stream.sessions.recording import RecordingSession
from evimae_stream.sessions.release import is_release_root
from evimae_stream.sessions.wear import WearSession, is_wear_csv
from evimae_stream.sessions.writer import SESSION_JSON

log = logging.getLogger(__name__)

_WEAR_HINTS = ("subject", "video", "split")
_CMU_HINTS = ("video", "labels", "video_offset_s")


def _pick(hints: dict, allowed: tuple[str, ...], kind: str, path: Path) -> dict:
    unknown = sorted(set(hints) - set(allowed))
    if unknown:
        raise InputError(
            f"{path}: option(s) {', '.join(unknown)} do not apply to a {kind} session "
            f"(it takes {', '.join(allowed) or 'none'})"
        )
    return {k: v for k, v in hints.items() if v is not None}


def open_session(path: str | os.PathLike, **hints) -> Session:
    """Open a session of any supported kind; ``.kind`` says which.

    - a directory with ``session.json``: our recording (``"recording"``; no hints);
    - a WEAR ``sbj_N.csv``, or a directory of them with ``subject=N`` (``"wear"``; hints
      ``subject``, ``video``, ``split``);
    - a CMU-MMAC session CSV (``"cmummac"``; hints ``video``, ``labels``, ``video_offset_s``).

    An EVI-MAE release root is a clip set, not a session: it raises InputError pointing to
    :class:`~evimae_stream.sessions.release.ReleaseClipDataset`. Anything else raises InputError
    naming the path.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / SESSION_JSON).is_file():
            _pick(hints, (), "recording", p)
            return RecordingSession.open(p)
        if is_release_root(p):
            raise InputError(
                f"{p}: an EVI-MAE release (short clips), not a session; read it with "
                "evimae_stream.sessions.ReleaseClipDataset(root, split=...)"
            )
        if any(p.glob("sbj_*.csv")):
            return WearSession.open(p, **_pick(hints, _WEAR_HINTS, "wear", p))
    elif p.suffix.lower() == ".csv":
        if is_wear_csv(p):
            return WearSession.open(p, **_pick(hints, _WEAR_HINTS, "wear", p))
        if is_cmummac_csv(p):
            return CmuMmacSession.open(p, **_pick(hints, _CMU_HINTS, "cmummac", p))
    raise InputError(
        f"{p}: not a recognised session (expected a recorded session directory with "
        f"{SESSION_JSON}, a WEAR sbj_N.csv or a directory of them, or a CMU-MMAC session CSV)"
    )
