"""Where predictions go: JSON Lines (schema in :mod:`evimae_stream.runtime.events`), a live
terminal line on stderr, and the summary at exit."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import IO, TextIO

from evimae_stream.errors import InputError
from evimae_stream.runtime.events import Gap, Prediction, dumps
from evimae_stream.runtime.output_lock import lock_output
from evimae_stream.runtime.percentiles import Percentiles

_SHORT = {"left_arm": "LA", "right_arm": "RA", "left_leg": "LL", "right_leg": "RL", "camera": "cam"}


class JsonlSink:
    """Writes events to a file, or stdout for ``-``; flushed per line so a reader can follow.
    Thread-safe: predictions and label events come from different threads."""

    def __init__(self, target: str | Path, timings: bool, truth: bool = False) -> None:
        self.timings = timings
        self.truth = truth
        self._lock = threading.Lock()
        if str(target) == "-":
            self._fh: IO[str] = sys.stdout
            self._own = False
        else:
            path = Path(target)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = path.open("a", encoding="utf-8")  # truncated once it is locked
            except OSError as exc:
                raise InputError(f"--jsonl {path}: cannot write ({exc.strerror})") from None
            try:
                lock_output(self._fh.fileno(), "--jsonl", path)
            except InputError:
                self._fh.close()
                raise
            self._fh.truncate(0)
            self._own = True

    def write(self, obj: dict) -> None:
        line = dumps(obj) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def emit(self, pred: Prediction) -> None:
        self.write(pred.to_dict(self.timings, self.truth))

    def gap(self, gap: Gap) -> None:
        self.write(gap.to_dict())

    def close(self) -> None:
        if self._own:
            self._fh.close()


def health_text(health: dict[str, dict]) -> str:
    """``LA ok RA 49Hz LL DOWN cam ok``: one word per stream."""
    parts = []
    for name, h in health.items():
        if not h["up"]:
            state = "DOWN"
        elif h["missing"]:
            state = "gap"
        else:
            state = "ok"
        parts.append(f"{_SHORT.get(name, name)} {state}")
    return " ".join(parts)


class TerminalLine:
    """A single status line rewritten in place on stderr (at most ``hz`` times a second):
    window time, action, score and mode, the latency with its running p50/p95/p99, sensor
    health and skipped windows, e.g.
    ``[   12.5s] stirring 0.91 [multimodal] | 48 ms p50/95/99 45/61/70 | LA ok RA ok cam ok``.

    The percentiles are over the latencies of the newest :data:`RUNNING` predictions the line
    was given (every one, drawn or not), so they follow a long run without slowing it down; the
    exit summary has them over the whole run."""

    #: how many recent latencies the running percentiles cover
    RUNNING = 2000
    #: the longest line drawn (a terminal wraps a longer one, and \r then rewrites only its end)
    WIDTH = 120

    def __init__(self, stream: TextIO | None = None, hz: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.period = 1.0 / hz
        self._last = 0.0
        self._width = 0
        self._drawn = ""
        self._lock = threading.Lock()
        self.skipped = 0
        self.latency = Percentiles(keep=self.RUNNING)
        self._routed = self._route_log_handlers()

    def _route_log_handlers(self) -> list[logging.StreamHandler]:
        """Log handlers that write to our stream (the CLI's stderr handler) write through
        :meth:`write_above` while the line is shown: a warning starts on its own line and the
        status line is drawn again under it."""
        routed = []
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                handler.setStream(_Above(self))
                routed.append(handler)
        return routed

    def emit(self, pred: Prediction) -> None:
        if pred.latency_ms is not None and pred.label is not None:
            self.latency.add(pred.latency_ms)
        now = time.monotonic()
        if now - self._last < self.period:
            return
        self._last = now
        with self._lock:
            self._drawn = self.text(pred)
            self.stream.write("\r" + self._pad(self._drawn))
            self.stream.flush()

    def write_above(self, text: str) -> None:
        """Write ``text`` (whole lines) above the status line: the line is cleared, the text
        written from the first column, and the line drawn again after it."""
        with self._lock:
            if self._width:
                self.stream.write("\r" + " " * self._width + "\r")
            self.stream.write(text)
            if self._drawn and text.endswith("\n"):
                self.stream.write(self._drawn)
                self._width = len(self._drawn)
            else:
                self._width = 0
            self.stream.flush()

    def text(self, pred: Prediction) -> str:
        """The line for ``pred`` (with the running latency percentiles so far)."""
        if pred.label is None:
            what = f"(no prediction: {pred.reason})"
        else:
            what = f"{pred.label} {pred.score:.2f} [{pred.mode}]"
        lat = "" if pred.latency_ms is None else f" | {pred.latency_ms:.0f} ms"
        q = self.latency.summary()
        if q["p50"] is not None:
            lat = (lat or " | - ms") + f" p50/95/99 {q['p50']:.0f}/{q['p95']:.0f}/{q['p99']:.0f}"
        text = f"[{pred.t_s:8.1f}s] {what}{lat} | {health_text(pred.health)}"
        if self.skipped:
            text += f" | skipped {self.skipped}"
        if len(text) > self.WIDTH:  # a long reason: the full one is in --jsonl
            text = text[: self.WIDTH - 1] + "…"
        return text

    def _pad(self, text: str) -> str:
        """``text`` padded over what is left of the previous, longer line."""
        pad = max(0, self._width - len(text))
        self._width = len(text)
        return text + " " * pad

    def close(self) -> None:
        for handler in self._routed:
            handler.setStream(self.stream)
        self._routed = []
        with self._lock:
            if self._width:
                self.stream.write("\n")
                self.stream.flush()
            self._width = 0
            self._drawn = ""


class _Above:
    """The stream a routed log handler writes to while a :class:`TerminalLine` is shown."""

    def __init__(self, line: TerminalLine) -> None:
        self.line = line

    def write(self, text: str) -> None:
        self.line.write_above(text)

    def flush(self) -> None:
        self.line.stream.flush()


#: what each mode of the summary means, for a newcomer
MODE_WORDS = {
    "multimodal": "video and IMUs",
    "imu_only": "IMUs alone",
    "video_only": "video alone",
    "none": "no prediction",
}


def summary_lines(summary: dict) -> list[str]:
    """The exit summary for people, each number with what it means (the same dict goes into
    the eval report)."""
    lat = summary["latency_ms"]
    out = [
        f"windows {summary['windows']} (predicted {summary['predicted']}, no prediction "
        f"{summary['no_prediction']}, skipped {summary['skipped']}); modes "
        + ", ".join(f"{k} {v} ({MODE_WORDS.get(k, k)})" for k, v in summary["modes"].items()),
        "  no prediction: the window lacked usable data (e.g. before a whole window arrived);",
        "  skipped: windows cut while the model was still busy with an earlier one",
    ]
    gaps = summary.get("gaps") or []
    if gaps:
        out.append(
            f"gaps jumped over {len(gaps)} ({sum(g['skipped_s'] for g in gaps):.1f} s, "
            f"{sum(g['windows'] for g in gaps)} empty windows not cut)"
        )
        out.append("  gaps: stretches in which no stream had data (see the gap events)")
    out.append(
        f"backend {summary['backend']}"
        + (f" ({summary['backend_note']})" if summary.get("backend_note") else "")
    )
    check = summary.get("backend_check")
    if check:
        out.append(
            f"  checked against eager fp32 on the first window: top-1 "
            f"{'agrees' if check['top1_agree'] else 'differs'}, max |Δprobability| "
            f"{check['max_abs_dprob']:.2g}, max |Δlogit| {check['max_abs_dlogit']:.2g}"
        )
    threads = summary.get("threads")
    if threads:
        out.append(f"torch threads {threads['count']} ({threads['why']})")
    if lat["p50"] is not None:
        out.append(
            f"latency ms p50 {lat['p50']:.1f} p95 {lat['p95']:.1f} p99 {lat['p99']:.1f}"
            + ("" if summary["timings"] else " (virtual clock)")
        )
        out.extend(
            ["  latency: from the newest sample a window used to its prediction (wall clock)"]
            if summary["timings"]
            else [
                "  virtual clock: --speed max stops session time while the model works, so this",
                "  is the newest sample's age when its window was cut; the model's time is below",
            ]
        )
    stages = summary["stages_ms"]
    if stages:
        out.append(
            "stages ms p50: "
            + ", ".join(f"{k} {v['p50']:.1f}" for k, v in stages.items() if v["p50"] is not None)
        )
        out.append("  stages: wall time a window spent in each step of the recogniser")
    for name, h in summary["streams"].items():
        extra = f", down: {h['down_reason']}" if h.get("down_reason") and not h["up"] else ""
        drv = h.get("driver")
        if drv:
            extra += (
                f", driver {drv['state']}, bad frames {drv['bad_frames']}, "
                f"reconnects {drv['reconnects']}"
            )
        out.append(
            f"  {name}: {h['samples']} samples, {h['rate_hz']:.1f} Hz, drops {h['drops']}{extra}"
        )
    if summary["streams"]:
        out.append("  drops: samples missing from a stream's timeline at its nominal rate")
    return out
