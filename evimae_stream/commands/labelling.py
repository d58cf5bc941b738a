"""The main command's labelling options: ``--labels`` (the action names), ``--annotate``, and
``--label-keys``, which labels a live run from the terminal, one key press per event.

The terminal is put in cbreak mode (single keys, no echo; Ctrl-C still interrupts) while the run
runs, and restored when it ends, however it ends: normally, Ctrl-C, SIGTERM/SIGHUP (which the CLI
turns into the same interrupt), or an error. A reader thread waits on the terminal with
``select`` and hands each key to the run's :class:`~evimae_stream.runtime.labelling.Labeller`:
``1``–``9`` start (or end) an action, ``0`` ends the open one.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Iterator

from evimae_stream.errors import EvimaeError, InputError
from evimae_stream.runtime.labelling import IDLE_KEY, MAX_KEYS, Labeller, parse_label_names

#: seconds the reader waits for a key before it checks whether the run ended
POLL_S = 0.1


def check_labelling(args, live: bool) -> None:
    """The labelling options fit the run (before any model or sensor opens)."""
    if args.label_keys:
        if not live:
            raise InputError("--label-keys labels a live run; use it with --camera/--imu-ports")
        if args.gui:
            raise InputError("--label-keys is the terminal's label bar; the monitor has its own")
        check_terminal()
    if args.annotate and not (args.gui and args.replay is not None):
        raise InputError("--annotate reviews a recording's labels; use --gui --replay SESSION")


def label_names(args, classes) -> tuple[str, ...]:
    """The action names to label with: ``--labels`` (unless it is an official checkpoint's
    class list), else the model's classes."""
    official = args.model is not None and args.model.suffix in (".pth", ".pt")
    if args.labels and not official:
        return tuple(parse_label_names(args.labels))
    return tuple(classes)


def check_terminal() -> None:
    """InputError unless stdin is a terminal (checked before any sensor opens)."""
    if not sys.stdin.isatty():
        raise InputError(
            "--label-keys reads single keys from a terminal, and stdin is not one; run it in a "
            "terminal, or label in the monitor (--gui) or later (--gui --replay DIR --annotate)"
        )


def legend(labeller: Labeller) -> str:
    """The keys, one line: ``keys: 1 walk · 2 run · 0 idle (end the action)``."""
    keys = [f"{i} {name}" for i, name in enumerate(labeller.classes[:MAX_KEYS], start=1)]
    return "keys: " + " · ".join(keys) + f" · {IDLE_KEY} idle (end the action)"


def _say(text: str) -> None:
    """One line above the status line (which rewrites itself on its next update)."""
    sys.stderr.write("\r\x1b[K" + text + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def terminal_keys(labeller: Labeller) -> Iterator[None]:
    """Feed the terminal's keys to ``labeller`` while the block runs (see the module doc)."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    stop = threading.Event()

    def on_change(change) -> None:
        t_s = (change.t_ns - labeller.origin_ns) / 1e9
        verb = "started" if change.kind == "start" else "ended"
        _say(f"label: {change.label} {verb} at {t_s:.2f} s")

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if not ready:
                continue
            data = os.read(fd, 32)
            if not data:
                return
            for ch in data.decode("utf-8", "ignore"):
                try:
                    bound = labeller.key(ch)
                except (EvimaeError, OSError, ValueError) as exc:  # a full disk: say so, go on
                    _say(f"label: {exc}")
                    continue
                if not bound and ch.isprintable():
                    _say(f"key {ch!r} is not bound; {legend(labeller)}")

    labeller.listeners.append(on_change)
    tty.setcbreak(fd)
    reader = threading.Thread(target=read, name="label-keys", daemon=True)
    try:
        _say(legend(labeller))
        reader.start()
        yield
    finally:
        stop.set()
        reader.join(1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        labeller.listeners.remove(on_change)
