"""What a person sees on the terminal: a warning logged while the status line is shown starts on
its own line and the status line is drawn again under it (issue 16 item 10)."""

from __future__ import annotations

import io
import logging

from evimae_stream.runtime.sinks import TerminalLine
from tests.helpers.runtime import runtime_prediction


def screen(text: str) -> list[str]:
    """What a terminal shows for ``text``: ``\\r`` returns to the first column (later characters
    overwrite), ``\\n`` starts a new line; trailing blanks dropped."""
    rows: list[list[str]] = [[]]
    col = 0
    for ch in text:
        if ch == "\n":
            rows.append([])
            col = 0
        elif ch == "\r":
            col = 0
        else:
            row = rows[-1]
            if col < len(row):
                row[col] = ch
            else:
                row.append(ch)
            col += 1
    return ["".join(r).rstrip() for r in rows if "".join(r).strip()]


def _with_stderr_handler(stream):
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    return handler


def test_a_warning_starts_on_its_own_line_and_the_status_line_is_redrawn():
    out = io.StringIO()
    handler = _with_stderr_handler(out)
    try:
        line = TerminalLine(out, hz=1e6)
        line.emit(runtime_prediction(1.5, "walking", [("walking", 0.91)]))
        logging.getLogger("evimae_stream.test").warning("left_arm: 3 bad frames")
        shown = screen(out.getvalue())
        assert shown[0] == "WARNING evimae_stream.test: left_arm: 3 bad frames"
        assert shown[1].startswith("[     1.5s] walking 0.91 [multimodal]")
        assert len(shown) == 2
        line.emit(runtime_prediction(2.0, "stirring", [("stirring", 0.8)]))
        line.close()
        shown = screen(out.getvalue())
        assert shown[0].startswith("WARNING") and shown[1].startswith("[     2.0s] stirring")
        assert out.getvalue().endswith("\n")
        # after the run the handler writes to the stream directly again
        assert handler.stream is out
        logging.getLogger("evimae_stream.test").warning("after")
        assert screen(out.getvalue())[-1] == "WARNING evimae_stream.test: after"
    finally:
        logging.getLogger().removeHandler(handler)


def test_a_longer_status_line_leaves_nothing_behind_the_warning():
    out = io.StringIO()
    handler = _with_stderr_handler(out)
    try:
        line = TerminalLine(out, hz=1e6)
        line.emit(runtime_prediction(1.0, None, [], latency_ms=None))
        logging.getLogger("x").warning("w")
        line.close()
        shown = screen(out.getvalue())
        assert shown[0] == "WARNING x: w"
        assert shown[1].startswith("[     1.0s] (no prediction: all streams missing)")
    finally:
        logging.getLogger().removeHandler(handler)
