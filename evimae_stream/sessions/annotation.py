"""Reviewing and correcting a recording's labels: segments, edits, undo, load and save.

:class:`Annotation` is what the monitor's annotate mode (``--gui --replay SESSION --annotate``)
drives, with no Qt in it, so every edit a user makes there is an API call a test (or a script)
can make too. Segments never overlap and stay inside the session: :meth:`Annotation.add` paints
a label over a span (what it covers of other segments is cut away), :meth:`Annotation.move`
stops a boundary at its neighbours. Every edit can be undone and redone; :meth:`Annotation.save`
writes ``labels.csv`` atomically and keeps the previous file as a backup
(:func:`~evimae_stream.sessions.labels.save_labels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.sessions.labels import check_label, recovered_segments, save_labels
from evimae_stream.types import Segment

#: shortest segment an edit leaves (s); shorter remnants of a cut are dropped
MIN_S = 0.05
#: undo steps kept
UNDO_DEPTH = 200


def _normalised(segments: Iterable[Segment]) -> list[Segment]:
    """Time order, overlaps resolved in favour of the later-starting segment."""
    out: list[Segment] = []
    for s in sorted(segments, key=lambda s: (s.start_s, s.end_s)):
        if out and out[-1].end_s > s.start_s:
            prev = out.pop()
            if s.start_s - prev.start_s >= MIN_S:
                out.append(Segment(prev.start_s, s.start_s, prev.label))
        out.append(s)
    return out


class Annotation:
    """The labels of one session under review. ``names``: the action names offered (the
    recording's, then any label in use); ``duration_s``: the session's length; ``flagged``:
    segments a crash left open and the recovery closed (shown for the user to check)."""

    def __init__(
        self,
        segments: Iterable[Segment],
        duration_s: float,
        names: Sequence[str] = (),
        path: str | Path | None = None,
        flagged: Iterable[Segment] = (),
    ) -> None:
        self.duration_s = float(duration_s)
        self.path = None if path is None else Path(path)
        self.segments: list[Segment] = _normalised(segments)
        self.names = list(dict.fromkeys([*names, *(s.label for s in self.segments)]))
        self._flagged = set(flagged)
        self._undo: list[list[Segment]] = []
        self._redo: list[list[Segment]] = []
        self._saved = list(self.segments)

    @classmethod
    def open(cls, session) -> Annotation:
        """The labels of an open recording session (its label names from session.json's
        ``meta.label_names``, else its classes)."""
        names = session.meta.get("label_names") or session.classes or []
        flagged = recovered_segments(session.path) if Path(session.path).is_dir() else []
        return cls(session.labels, session.duration_s, names, session.path, flagged)

    # -- reading -------------------------------------------------------------------------------
    def index_at(self, t_s: float) -> int | None:
        """The segment that contains ``t_s``, or None."""
        for i, s in enumerate(self.segments):
            if s.start_s <= t_s < s.end_s:
                return i
        return None

    def is_flagged(self, i: int) -> bool:
        """Segment ``i`` is one a crash left open (unchanged since the recovery closed it)."""
        return self.segments[i] in self._flagged

    @property
    def dirty(self) -> bool:
        """Changed since it was opened or last saved."""
        return self.segments != self._saved

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # -- edits ---------------------------------------------------------------------------------
    def _edit(self, segments: list[Segment]) -> None:
        self._undo.append(self.segments)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()
        self.segments = segments

    def _check_span(self, start_s: float, end_s: float) -> tuple[float, float]:
        start_s, end_s = max(0.0, float(start_s)), min(self.duration_s, float(end_s))
        if not end_s - start_s >= MIN_S:
            raise InputError(
                f"segment {start_s:.2f}-{end_s:.2f} s: shorter than {MIN_S} s or outside the "
                f"session (0-{self.duration_s:.2f} s)"
            )
        return start_s, end_s

    def _label(self, label: str) -> str:
        try:
            label = check_label(label)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if label not in self.names:
            self.names.append(label)
        return label

    def add(self, start_s: float, end_s: float, label: str) -> int:
        """Label ``start_s``–``end_s`` (clipped to the session) as ``label``, over whatever was
        there; returns the new segment's index."""
        start_s, end_s = self._check_span(start_s, end_s)
        label = self._label(label)
        kept: list[Segment] = []
        for s in self.segments:
            if s.end_s <= start_s or s.start_s >= end_s:
                kept.append(s)
                continue
            if start_s - s.start_s >= MIN_S:
                kept.append(Segment(s.start_s, start_s, s.label))
            if s.end_s - end_s >= MIN_S:
                kept.append(Segment(end_s, s.end_s, s.label))
        new = Segment(start_s, end_s, label)
        self._edit(sorted([*kept, new], key=lambda s: s.start_s))
        return self.segments.index(new)

    def move(self, i: int, start_s: float | None = None, end_s: float | None = None) -> Segment:
        """Move segment ``i``'s boundaries (None keeps one); each stops at its neighbour and at
        the session's ends. Returns the moved segment."""
        seg = self.segments[i]
        lo = self.segments[i - 1].end_s if i > 0 else 0.0
        hi = self.segments[i + 1].start_s if i + 1 < len(self.segments) else self.duration_s
        start = seg.start_s if start_s is None else min(max(float(start_s), lo), hi)
        end = seg.end_s if end_s is None else min(max(float(end_s), lo), hi)
        start, end = self._check_span(start, end)
        moved = Segment(start, end, seg.label)
        if moved != seg:
            self._edit([*self.segments[:i], moved, *self.segments[i + 1 :]])
        return moved

    def rename(self, i: int, label: str) -> Segment:
        """Give segment ``i`` another label."""
        seg = self.segments[i]
        renamed = Segment(seg.start_s, seg.end_s, self._label(label))
        if renamed != seg:
            self._edit([*self.segments[:i], renamed, *self.segments[i + 1 :]])
        return renamed

    def delete(self, i: int) -> Segment:
        """Remove segment ``i``."""
        seg = self.segments[i]
        self._edit([*self.segments[:i], *self.segments[i + 1 :]])
        return seg

    def fill_gaps(self, segments: Iterable[Segment]) -> int:
        """Put ``segments`` (a model's predictions) where nothing is labelled yet, one undo
        step; returns how many segments were added."""
        added: list[Segment] = []
        for p in segments:
            cuts = [(max(0.0, p.start_s), min(self.duration_s, p.end_s))]
            for s in self.segments:
                cuts = [
                    part
                    for a, b in cuts
                    for part in ((a, min(b, s.start_s)), (max(a, s.end_s), b))
                    if part[1] - part[0] >= MIN_S
                ]
            added += [Segment(a, b, self._label(p.label)) for a, b in cuts]
        if added:
            self._edit(_normalised([*self.segments, *added]))
        return len(added)

    def undo(self) -> bool:
        """Undo the last edit (False: nothing to undo)."""
        if not self._undo:
            return False
        self._redo.append(self.segments)
        self.segments = self._undo.pop()
        return True

    def redo(self) -> bool:
        """Redo the last undone edit (False: nothing to redo)."""
        if not self._redo:
            return False
        self._undo.append(self.segments)
        self.segments = self._redo.pop()
        return True

    # -- saving --------------------------------------------------------------------------------
    def save(self) -> Path:
        """Write the segments to the session's ``labels.csv`` (atomically, the previous file
        kept as ``labels.csv.bak``); returns its path."""
        if self.path is None or not self.path.is_dir():
            raise InputError(
                f"{self.path}: only a recorded session directory holds a labels.csv; "
                "convert the session first (`evimae-stream convert`)"
            )
        try:
            out = save_labels(self.path, self.segments)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot save the labels ({exc.strerror})") from None
        self._saved = list(self.segments)
        return out
