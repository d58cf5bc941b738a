"""Advisory locks on a run's outputs (``--jsonl FILE``, ``--record DIR``).

Two runs writing one JSON Lines file tear each other's lines, and two runs recording into one
directory interleave two sessions; each output is therefore held with an exclusive ``flock``
for the whole run, and a second run asking for it is refused with one line before it writes
anything. The lock is the kernel's: it goes with the process, so a run killed with SIGKILL
leaves no stale lock behind. Where ``fcntl`` does not exist (Windows) outputs are not locked.
"""

from __future__ import annotations

import os

from evimae_stream.errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def lock_output(fd: int, option: str, path: os.PathLike | str) -> None:
    """Hold an exclusive advisory lock on the open file or directory ``fd`` until it is closed;
    InputError naming ``option`` and ``path`` when another process holds it."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise InputError(
            f"{option} {path}: another run is writing it (locked); wait for that run to end "
            "or choose another path"
        ) from None
