"""A session's labels on disk: the crash-safe log written while recording, the recovery of a
segment a crash left open, and the atomic rewrite a review saves.

Files in the session directory (``labels.csv`` is the one the readers and training read,
``start_s,end_s,label``, DESIGN §5; the others only serve the log)::

    labels.csv            start_s,end_s,label              closed segments, appended one by one
    labels_open.csv       start_s,label                    the segment being labelled right now
    labels_recovered.csv  start_s,end_s,label,reason       segments a crash left open, as closed
    labels.csv.bak        the labels.csv before the last review's save

Crash safety: every label event is on disk before the call returns (append, flush and fsync of
``labels.csv``; ``labels_open.csv`` written to a temporary file, fsynced and renamed; the directory
fsynced), so a SIGKILL loses no closed segment. The segment open at the kill is closed on the next
open of the session (:func:`recover_open_segment`) at the *kill time*, defined as the last sample
time in the recording (the newest IMU sample or frame that reached the disk: the last instant the
recording is known to have been alive), and flagged in ``labels_recovered.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from evimae_stream.sessions.writer import LABELS_CSV
from evimae_stream.types import Segment

log = logging.getLogger(__name__)

LABELS_OPEN = "labels_open.csv"
LABELS_RECOVERED = "labels_recovered.csv"
LABELS_BACKUP = LABELS_CSV + ".bak"
HEADER = "start_s,end_s,label"
_OPEN_HEADER = "start_s,label"
_RECOVERED_HEADER = "start_s,end_s,label,reason"


def check_label(label: str) -> str:
    """``label`` stripped; ValueError unless it is one non-empty line of printable text."""
    if not isinstance(label, str) or not label.strip() or not label.isprintable():
        raise ValueError(f"a label must be a non-empty line of printable text, got {label!r}")
    return label.strip()


def _row(*fields) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(
        [repr(float(f)) if isinstance(f, float) else f for f in fields]
    )
    return buf.getvalue()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _append_synced(path: Path, header: str, text: str) -> None:
    """Append ``text`` to ``path`` (made with ``header`` first), flushed and fsynced."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="\n") as f:
        if new:
            f.write(header + "\n")
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if new:
        _fsync_dir(path.parent)


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file, fsynced, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class LabelLog:
    """The labels of one recording as they happen: :meth:`start` opens a segment,
    :meth:`end` closes it; each call is on disk when it returns (see the module doc).
    Times are seconds from the session start. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.open: tuple[float, str] | None = None
        self.closed: list[Segment] = []

    def start(self, start_s: float, label: str) -> None:
        """Open a segment of ``label`` at ``start_s`` (the open one, if any, ends there)."""
        label = check_label(label)
        with self._lock:
            if self.open is not None:
                self._end(start_s)
            row = _row(float(start_s), label)
            _write_atomic(self.path / LABELS_OPEN, _OPEN_HEADER + "\n" + row)
            self.open = (float(start_s), label)

    def end(self, end_s: float) -> Segment | None:
        """Close the open segment at ``end_s`` (no-op without one); returns it."""
        with self._lock:
            return self._end(end_s)

    def _end(self, end_s: float) -> Segment | None:
        if self.open is None:
            return None
        start_s, label = self.open
        seg = Segment(start_s, max(start_s, float(end_s)), label)
        _append_synced(self.path / LABELS_CSV, HEADER, _row(seg.start_s, seg.end_s, seg.label))
        self.open = None
        self.closed.append(seg)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / LABELS_OPEN)
        _fsync_dir(self.path)
        return seg


def _read_rows(path: Path, header: str) -> list[list[str]]:
    """The data rows of one of the log's small CSVs ([] when missing or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or ",".join(rows[0]) != header:
        log.warning("%s: header is not %s; ignored", path, header)
        return []
    return rows[1:]


def recover_open_segment(path: str | Path, kill_s: float, closed: Iterable[Segment]) -> list[str]:
    """Close the segment a crash left open in ``labels_open.csv`` at ``kill_s`` (the last sample
    time in the recording), append it to ``labels.csv`` and flag it in ``labels_recovered.csv``.
    ``closed``: the segments labels.csv holds (a kill between appending the segment and removing
    the open file must not add it twice). Returns one line per segment recovered, for the
    session's ``recovery``; a read-only session is left as it is (with a line saying so)."""
    path = Path(path)
    open_file = path / LABELS_OPEN
    if not open_file.exists():
        return []
    rows = _read_rows(open_file, _OPEN_HEADER)
    lines: list[str] = []
    try:
        for row in rows[:1]:
            start_s, label = float(row[0]), check_label(row[1])
            end_s = max(start_s, float(kill_s))
            if not any(s.start_s == start_s and s.label == label for s in closed):
                _append_synced(path / LABELS_CSV, HEADER, _row(start_s, end_s, label))
                reason = "open when the recording stopped; closed at its last sample"
                _append_synced(
                    path / LABELS_RECOVERED, _RECOVERED_HEADER, _row(start_s, end_s, label, reason)
                )
                lines.append(
                    f"{path / LABELS_CSV}: segment {label!r} from {start_s:.2f} s was open when "
                    f"the recording stopped; closed at its last sample, {end_s:.2f} s (flagged in "
                    f"{LABELS_RECOVERED}; check it with --annotate)"
                )
        os.unlink(open_file)
        _fsync_dir(path)
    except OSError as exc:
        lines.append(f"{open_file}: an open segment could not be closed ({exc.strerror})")
    except (ValueError, IndexError):
        lines.append(f"{open_file}: unreadable; the segment open at the crash is lost")
    return lines


def recovered_segments(path: str | Path) -> list[Segment]:
    """The segments a crash left open and the recovery closed (the flagged ones)."""
    out = []
    for row in _read_rows(Path(path) / LABELS_RECOVERED, _RECOVERED_HEADER):
        with contextlib.suppress(ValueError, IndexError):
            out.append(Segment(float(row[0]), float(row[1]), row[2]))
    return out


def save_labels(path: str | Path, segments: Iterable[Segment]) -> Path:
    """Write ``labels.csv`` of the session at ``path`` atomically (a temporary file renamed over
    it), in time order; the previous file is kept as ``labels.csv.bak``. Returns the path."""
    path = Path(path)
    target = path / LABELS_CSV
    text = (
        HEADER
        + "\n"
        + "".join(
            _row(float(s.start_s), float(s.end_s), check_label(s.label))
            for s in sorted(segments, key=lambda s: (s.start_s, s.end_s))
        )
    )
    if target.exists():
        tmp_bak = path / (LABELS_BACKUP + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_bak)
        try:
            os.link(target, tmp_bak)  # the old file itself, never a moment without labels.csv
        except OSError:
            tmp_bak.write_bytes(target.read_bytes())
        os.replace(tmp_bak, path / LABELS_BACKUP)
    _write_atomic(target, text)
    return target
