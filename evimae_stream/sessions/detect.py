"""``open_session``: open any supported session source by asking the registered readers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.sessions.base import READERS, Session
from evimae_stream.sessions.release import is_release_root

log = logging.getLogger(__name__)


def _pick(hints: dict, allowed: tuple[str, ...], kind: str, path: Path) -> dict:
    unknown = sorted(set(hints) - set(allowed))
    if unknown:
        raise InputError(
            f"{path}: option(s) {', '.join(unknown)} do not apply to a {kind} session "
            f"(it takes {', '.join(allowed) or 'none'})"
        )
    return {k: v for k, v in hints.items() if v is not None}


def open_session(path: str | os.PathLike, **hints) -> Session:
    """Open a session of any registered kind (:data:`~evimae_stream.sessions.base.READERS`);
    ``.kind`` says which. ``hints`` are the reader's options, e.g. a WEAR ``subject=N``.

    An EVI-MAE release root is a clip set, not a session: it raises InputError pointing to
    :class:`~evimae_stream.sessions.release.ReleaseClipDataset`. Anything no reader recognises
    raises InputError naming the path and what each reader expects.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if not (p.is_dir() or p.is_file()):
        raise InputError(
            f"{p}: not a regular file or directory (a FIFO or device?); "
            "replay a recorded session or a dataset file"
        )
    if is_release_root(p):
        raise InputError(
            f"{p}: an EVI-MAE release (short clips), not a session; read it with "
            "evimae_stream.sessions.ReleaseClipDataset(root, split=...)"
        )
    for reader in READERS.values():
        if reader.detect(p):
            return reader.open(p, **_pick(hints, reader.hints, reader.kind, p))
    expected = "; ".join(reader.describes for reader in READERS.values())
    raise InputError(f"{p}: not a recognised session (expected one of: {expected})")
