"""Where a recipe's sessions are: every ``session``, ``directory`` and ``glob`` source resolved
to session paths, all of them checked before any session is cut.

A user points training at a folder of recordings (``--set data.sessions=DIR``): a session is any
path one of the registered readers recognises (:data:`evimae_stream.sessions.base.READERS`: our
recording directories, WEAR ``sbj_N.csv``, CMU-MMAC CSVs, XDF files), so a folder is searched
the way :func:`~evimae_stream.sessions.open_session` would open its entries. A directory that is
itself a session (one of our recordings) is not searched further; a directory of WEAR subjects
yields each ``sbj_N.csv``.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.sessions.base import READERS
from evimae_stream.sessions.release import is_release_root
from training.config import DataSection, SourceConfig

log = logging.getLogger(__name__)

#: source kinds resolved here (synthetic sessions are generated, release roots are clip sets)
PATH_KINDS = ("session", "directory", "glob")


@dataclass(frozen=True)
class SessionRef:
    """One session to cut: its path, the split its source names and the source's config key."""

    path: Path
    split: str
    key: str


def is_session(path: Path) -> bool:
    """Whether a registered reader recognises ``path``."""
    if path.is_dir() and is_release_root(path):
        return False
    return any(reader.detect(path) for reader in READERS.values())


def find_sessions(root: Path) -> list[Path]:
    """Every session at or under ``root``, sorted by path (hidden entries skipped).

    Files a reader recognises are sessions; a directory is a session when a reader recognises
    it and none of its files is one (a folder of WEAR CSVs is searched, not opened whole)."""
    if root.is_file():
        return [root] if is_session(root) else []
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file() and is_session(p)]
    if not files and is_session(root):
        return [root]
    found = list(files)
    for sub in entries:
        if sub.is_dir():
            found.extend(find_sessions(sub))
    return found


def _resolve_one(key: str, src: SourceConfig) -> tuple[list[Path], str | None]:
    """(session paths, what is wrong) of one path source."""
    key = key if key.startswith("data.sessions") else f"{key}.path"
    if src.kind == "glob":
        matches = sorted(Path(m) for m in glob.glob(src.path, recursive=True))
        found = [s for m in matches for s in find_sessions(m)]
        if not found:
            why = "matches no path" if not matches else "matches no session"
            return [], f"{key}: pattern {src.path!r} {why}"
        return list(dict.fromkeys(found)), None
    path = Path(src.path)
    if not path.exists():
        return [], f"{key}: {path} not found"
    if src.kind == "session":
        return [path], None
    found = find_sessions(path)
    if not found:
        return [], f"{key}: no session under {path} (expected: {_describes()})"
    return found, None


def _describes() -> str:
    return "; ".join(reader.describes for reader in READERS.values())


def resolve_sessions(data: DataSection) -> list[SessionRef]:
    """Every session of the path sources, in source order; an :class:`InputError` naming every
    missing path and every empty folder or pattern at once, before anything is read."""
    refs: list[SessionRef] = []
    problems: list[str] = []
    for key, src in data.all_sources():
        if src.kind not in PATH_KINDS:
            continue
        paths, why = _resolve_one(key, src)
        if why is not None:
            problems.append(why)
        refs.extend(SessionRef(p, src.split, key) for p in paths)
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if problems[1:] else ""
        raise InputError(f"config {problems[0]}{more}; check the paths")
    seen: dict[Path, SessionRef] = {}
    for ref in refs:
        first = seen.setdefault(ref.path.resolve(), ref)
        if first.split != ref.split:
            log.warning(
                "%s: in split %s (%s) and %s (%s): its windows are scored on what trained on them",
                ref.path, first.split, first.key, ref.split, ref.key,
            )  # fmt: skip
    return refs
