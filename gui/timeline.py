"""A timeline of predictions (one colour per class, with a legend) above the ground-truth lane.

Each prediction colours the span from the previous prediction (or half a stride before it) to
its own time; consecutive equal labels merge into one entry. The view follows "now" over the
last :data:`SPAN_S` seconds. Seeking back in a replay drops the entries after the new position
(as soon as "now" moves back, and again if a prediction from before the seek arrives late).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from evimae_stream.colours import class_colour
from evimae_stream.recognised import vocabulary_line
from evimae_stream.runtime.events import Prediction
from evimae_stream.types import Segment

#: seconds of timeline shown
SPAN_S = 60.0
#: a prediction further than this after the previous one starts a new entry (s); a slow CPU
#: that skips windows (latest wins) still gives a continuous lane
MAX_GAP_S = 5.0
#: span coloured by a prediction that has no predecessor (s)
FIRST_SPAN_S = 0.5
#: entries kept
MAX_ENTRIES = 5000
PRED_Y, TRUTH_Y, SEGMENT_Y, LANE_H = 1.1, 0.1, 2.1, 0.8
#: height of the lanes' plot (px)
PLOT_H = 120


@dataclass
class TimelineEntry:
    """A span of the timeline during which one label was predicted (seconds)."""

    start: float
    end: float
    label: str


class Timeline(QWidget):
    """``entries`` (predicted lane), ``truth`` (ground-truth lane), ``legend`` (QLabel)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setYRange(0.0, 2.0, padding=0.02)
        self.plot.getAxis("left").setTicks([[(1.5, "predicted"), (0.5, "truth")]])
        self.plot.getAxis("bottom").setLabel("time (s)")
        self.plot.setFixedHeight(PLOT_H)  # two lanes: height beyond this only thins the plots
        self.pred_item = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[], brushes=[])
        self.truth_item = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[], brushes=[])
        self.segment_item = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[], brushes=[])
        self.plot.addItem(self.truth_item)
        self.plot.addItem(self.pred_item)
        self.plot.addItem(self.segment_item)
        self.now_line = pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen("#333", width=1))
        self.plot.addItem(self.now_line)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        #: says when the session's labels are not among the model's classes (empty otherwise)
        self.vocabulary = QLabel("")
        self.vocabulary.setWordWrap(True)
        self.vocabulary.setTextFormat(Qt.TextFormat.PlainText)
        self.vocabulary.setStyleSheet("color: #b71c1c")
        self.vocabulary.hide()
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.vocabulary)
        layout.addWidget(self.legend)
        self.model_classes: list[str] = []
        self.entries: list[TimelineEntry] = []
        #: ``--segments``: the interval head's segments by id (open ones grow, then close)
        self.segments: dict[int, TimelineEntry] = {}
        self.truth: list[Segment] = []
        self.classes: list[str] = []
        self.now_s = 0.0
        self._last_t: float | None = None
        self._legend_labels: tuple[str, ...] = ()

    # -- colours -------------------------------------------------------------------------------
    def set_classes(self, classes: Sequence[str]) -> None:
        """Fix the colour order (the model's classes)."""
        self.classes = list(dict.fromkeys(classes))
        self.model_classes = list(self.classes)
        self._check_vocabulary()

    def colour(self, label: str) -> str:
        """The colour of ``label`` (:func:`evimae_stream.colours.class_colour`: the same as in
        ``--eval``'s timeline PNG)."""
        if label not in self.classes:
            self.classes.append(label)
        return class_colour(label, self.classes)

    # -- content -------------------------------------------------------------------------------
    def set_truth(self, segments: Sequence[Segment], check_vocabulary: bool = True) -> None:
        """The ground-truth lane (empty: no lane content); ``check_vocabulary`` False for the
        labels a user is recording (new names for a model still to be trained)."""
        self.truth = list(segments)
        self._draw(self.truth_item, [(s.start_s, s.end_s, s.label) for s in self.truth], TRUTH_Y)
        self._update_legend()
        if check_vocabulary:
            self._check_vocabulary()

    def _check_vocabulary(self) -> None:
        """Show which ground-truth labels the model does not know (it can never predict them:
        a model scored on another dataset's session)."""
        truths = {s.label for s in self.truth}
        unknown = sorted(truths - set(self.model_classes)) if self.model_classes else []
        overlap = bool(truths & set(self.model_classes))
        text = vocabulary_line(unknown, overlap, len(self.model_classes)) if unknown else ""
        self.vocabulary.setText(text.removeprefix("warning: "))
        self.vocabulary.setVisible(bool(text))

    def add_prediction(self, pred: Prediction) -> None:
        """Add one prediction; predictions without a label leave a gap."""
        t = pred.t_s
        if self._last_t is not None and t < self._last_t:  # seeked back
            self._cut_after(t - FIRST_SPAN_S)
        if pred.label is None:
            self._last_t = t
            return
        prev = self._last_t
        start = prev if prev is not None and 0.0 <= t - prev <= MAX_GAP_S else t - FIRST_SPAN_S
        last = self.entries[-1] if self.entries else None
        if last is not None and last.label == pred.label and abs(last.end - start) < 1e-9:
            last.end = t
        else:
            self.entries.append(TimelineEntry(start, t, pred.label))
            if len(self.entries) > MAX_ENTRIES:
                del self.entries[: len(self.entries) - MAX_ENTRIES]
        self._last_t = t

    def add_segment(self, event) -> None:
        """A ``segment`` event (:class:`~evimae_stream.runtime.segmenter.SegmentEvent`): its
        span replaces the earlier one of the same id; the lane appears with the first."""
        if not self.segments:
            self.plot.setYRange(0.0, 3.0, padding=0.02)
            ticks = [(2.5, "segments"), (1.5, "predicted"), (0.5, "truth")]
            self.plot.getAxis("left").setTicks([ticks])
        self.segments[event.id] = TimelineEntry(event.start_s, event.end_s, event.label)
        if len(self.segments) > MAX_ENTRIES:
            for key in sorted(self.segments)[: len(self.segments) - MAX_ENTRIES]:
                del self.segments[key]

    def _cut_after(self, t: float) -> None:
        self.segments = {k: e for k, e in self.segments.items() if e.start < t}
        self.entries = [e for e in self.entries if e.start < t]
        if self.entries and self.entries[-1].end > t:
            self.entries[-1].end = t
        self._last_t = None

    def redraw(self, now_s: float) -> None:
        """Draw the entries and follow ``now_s`` (seconds on the timeline). When "now" moves
        back (a replay seeked back), the entries after it are from an earlier pass: dropped."""
        now_s = float(now_s)
        if now_s < self.now_s - FIRST_SPAN_S and self.entries and self.entries[-1].end > now_s:
            self._cut_after(now_s)
        self.now_s = now_s
        lo = max(self.now_s, SPAN_S) - SPAN_S  # fills from 0 s, then scrolls
        shown = [(e.start, e.end, e.label) for e in self.entries if e.end >= lo]
        self._draw(self.pred_item, shown, PRED_Y)
        segs = [(e.start, e.end, e.label) for e in self.segments.values() if e.end >= lo]
        self._draw(self.segment_item, segs, SEGMENT_Y)
        self.now_line.setValue(self.now_s)
        self.plot.setXRange(lo - 0.5, max(self.now_s, SPAN_S) + 1.0, padding=0)
        self._update_legend()

    def _draw(self, item: pg.BarGraphItem, spans: list[tuple[float, float, str]], y0: float):
        n = len(spans)
        x0 = np.array([s[0] for s in spans], dtype=np.float64)
        x1 = np.array([s[1] for s in spans], dtype=np.float64)
        brushes = [pg.mkBrush(self.colour(s[2])) for s in spans]
        item.setOpts(
            x0=x0, x1=x1, y0=np.full(n, y0), height=np.full(n, LANE_H), brushes=brushes,
            pen=pg.mkPen(None),
        )  # fmt: skip

    def _update_legend(self) -> None:
        seen = dict.fromkeys([e.label for e in self.entries[-200:]] + [s.label for s in self.truth])
        labels = tuple(c for c in self.classes if c in seen) + tuple(
            x for x in seen if x not in self.classes
        )
        if labels == self._legend_labels:
            return
        self._legend_labels = labels
        self.legend.setText(
            "&nbsp;&nbsp; ".join(
                f'<span style="color:{self.colour(x)}; font-size:14px">&#9632;</span>&nbsp;'
                f"{html.escape(x)}"
                for x in labels
            )
        )
