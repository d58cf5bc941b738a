"""Labelling while recording: the user's action names on number keys, one open segment at a time.

A :class:`Labeller` is the one state machine behind the monitor's label bar and the terminal's
``--label-keys``: :meth:`Labeller.press` of an action starts it, pressing it again (or another
action, or :meth:`Labeller.idle`) ends it. Every event is stamped on the run's host clock — the
clock the drivers stamp samples with, which the :class:`~evimae_stream.runtime.run.Composer`
owns — so a label lines up with the samples recorded at the same instant. Each event goes to the
recording's crash-safe :class:`~evimae_stream.sessions.labels.LabelLog` (while one is attached)
and as a ``label`` event to the run's sinks (``--jsonl``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.runtime.events import label_event
from evimae_stream.sessions.labels import LabelLog, check_label
from evimae_stream.types import Segment

log = logging.getLogger(__name__)

#: the key that ends the open segment without starting another
IDLE_KEY = "0"
#: at most this many actions get a number key (1..9)
MAX_KEYS = 9


def parse_label_names(text: str) -> list[str]:
    """The action names of ``--labels``: a file (one name per line, or a
    ``class_labels_indices.csv`` with a ``display_name`` column) or ``"a,b,c"``."""
    path = Path(text)
    if path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if lines and "display_name" in lines[0].split(","):
            import csv

            rows = list(csv.DictReader(lines))
            names = [r["display_name"].strip() for r in rows if r.get("display_name")]
        else:
            names = lines
        where = f"--labels {path}"
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        where = f"--labels {text!r}"
    if not names:
        raise InputError(f'{where}: no action names; give a file of names or "walk,run,sit"')
    try:
        names = [check_label(n) for n in names]
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    if len(set(names)) != len(names):
        raise InputError(f"{where}: an action name is given twice; names must be unique")
    return names


@dataclass(frozen=True)
class LabelChange:
    """One label event: ``kind`` ``start`` or ``end`` of ``label`` at ``t_ns`` (host clock)."""

    kind: str
    label: str
    t_ns: int


class Labeller:
    """The label state of one run (see the module doc). ``classes``: the action names (number
    keys 1..9 in this order); ``clock``: the run's host clock; ``origin_ns``: 0 s of the run's
    timeline (``t_s`` of the events, as the predictions'). Thread-safe: the GUI thread or a key
    reader presses, the sinks are called from the pressing thread."""

    def __init__(
        self,
        classes: Sequence[str],
        clock: Clock,
        origin_ns: int,
        sinks: Sequence = (),
    ) -> None:
        self.classes = [check_label(c) for c in classes]
        if not self.classes:
            raise InputError("labelling needs at least one action name (--labels a,b,c)")
        self.clock = clock
        self.origin_ns = int(origin_ns)
        self.sinks = list(sinks)
        self.listeners: list[Callable[[LabelChange], None]] = []
        self._lock = threading.Lock()
        self._log: LabelLog | None = None
        self._log_t0_ns = 0
        self.current: tuple[str, int] | None = None
        #: closed segments on the run's timeline (seconds from ``origin_ns``)
        self.segments: list[Segment] = []

    # -- the recording -------------------------------------------------------------------------
    def record_to(self, path: str | Path, t0_ns: int) -> LabelLog:
        """Write the labels to the session at ``path`` whose 0 s is host time ``t0_ns`` from
        now on (a segment already open starts there at the recording's start)."""
        with self._lock:
            self._log = LabelLog(path)
            self._log_t0_ns = int(t0_ns)
            if self.current is not None:
                label, start = self.current
                self._log.start(max(0.0, self._session_s(start)), label)
            return self._log

    def stop_recording(self) -> None:
        """End the open segment (a recording's labels end with it) and detach the log."""
        with self._lock:
            if self.current is not None:
                self._change("end", self.current[0], int(self.clock()))
            self._log = None

    def _session_s(self, t_ns: int) -> float:
        return (t_ns - self._log_t0_ns) / 1e9

    # -- key presses ---------------------------------------------------------------------------
    def key(self, char: str) -> bool:
        """A number key: ``1``.. the actions, :data:`IDLE_KEY` ends; False for any other key."""
        if char == IDLE_KEY:
            self.idle()
            return True
        if char.isdigit() and 1 <= int(char) <= min(len(self.classes), MAX_KEYS):
            self.press(self.classes[int(char) - 1])
            return True
        return False

    def press(self, label: str) -> None:
        """Start ``label``; if it is the open one, end it; another open one ends first."""
        if label not in self.classes:
            raise InputError(f"label {label!r} is not one of {', '.join(self.classes)}")
        with self._lock:
            t = int(self.clock())
            current = self.current
            if current is not None:
                self._change("end", current[0], t)
            if current is None or current[0] != label:
                self._change("start", label, t)

    def idle(self) -> None:
        """End the open segment, if any (the idle key)."""
        with self._lock:
            if self.current is not None:
                self._change("end", self.current[0], int(self.clock()))

    def close(self) -> None:
        """End of the run: the open segment ends now."""
        self.idle()

    def _change(self, kind: str, label: str, t_ns: int) -> None:
        if kind == "start":
            self.current = (label, t_ns)
            if self._log is not None:
                self._log.start(max(0.0, self._session_s(t_ns)), label)
        else:
            start = self.current[1] if self.current is not None else t_ns
            self.current = None
            self.segments.append(
                Segment((start - self.origin_ns) / 1e9, (t_ns - self.origin_ns) / 1e9, label)
            )
            if self._log is not None:
                self._log.end(self._session_s(t_ns))
        event = label_event(kind, label, (t_ns - self.origin_ns) / 1e9)
        for sink in self.sinks:
            sink.write(event)
        change = LabelChange(kind, label, t_ns)
        for fn in self.listeners:
            fn(change)
        log.info("label %s %s at %.2f s", kind, label, event["t_s"])

    def timeline(self, now_ns: int | None = None) -> list[Segment]:
        """The closed segments and the open one up to now, on the run's timeline."""
        with self._lock:
            out = list(self.segments)
            if self.current is not None:
                label, start = self.current
                now = int(self.clock()) if now_ns is None else int(now_ns)
                t0, t1 = start - self.origin_ns, max(now, start) - self.origin_ns
                out.append(Segment(t0 / 1e9, t1 / 1e9, label))
            return out


@dataclass(frozen=True)
class LabelSetup:
    """How a live run is labelled: the action names, and ``keys``: optional
    ``keys(labeller)`` → a context manager that feeds key presses while the run runs (the
    terminal's ``--label-keys`` reader)."""

    classes: tuple[str, ...]
    keys: Callable[[Labeller], contextlib.AbstractContextManager] | None = None


@contextlib.contextmanager
def labelled(labels: LabelSetup | None, clock: Clock, origin_ns: int, jsonl=None, record=None):
    """A run's :class:`Labeller` on its host ``clock`` while the block runs (None without
    ``labels``): events to ``jsonl``, segments to the recording at ``record`` (whose 0 s is
    ``origin_ns``), the key reader of ``labels.keys`` running; the open segment ends with it."""
    if labels is None:
        yield None
        return
    labeller = Labeller(labels.classes, clock, origin_ns, [jsonl] if jsonl is not None else [])
    if record is not None:
        labeller.record_to(record, origin_ns)
    try:
        with labels.keys(labeller) if labels.keys else contextlib.nullcontext():
            yield labeller
    finally:
        labeller.close()
