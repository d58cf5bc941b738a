"""The annotate window (``evimae-stream --gui --replay SESSION --annotate``): a recording's
video, IMU traces and labels on one timeline, to review and correct the labels.

Every edit goes through the session's :class:`~evimae_stream.sessions.annotation.Annotation`
(no Qt in it: what the window does, a script or a test can do through the same calls). Segments
are pyqtgraph ``LinearRegionItem`` s: drag a boundary or the whole segment; click one to select
it. The cursor (the dark line; click anywhere on the timeline) picks the frame shown.

Keys: ``1``–``9`` rename the selected segment to that action (with none selected, label from
the cursor on: 2 s, or up to the next segment), Delete removes it, Ctrl+Z / Ctrl+Y undo / redo,
Ctrl+S saves (``labels.csv`` atomically, the previous file kept as ``labels.csv.bak``), Left /
Right move the cursor by half a second. Frames are decoded in a worker thread, the latest
request wins; the model's predictions (``--model``) are computed in one too and fill the
unlabelled gaps as one undoable edit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QColor, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from evimae_stream.colours import class_colour
from evimae_stream.errors import EvimaeError, InputError
from evimae_stream.sessions.annotation import Annotation
from evimae_stream.types import Segment
from gui.video_view import VideoView

log = logging.getLogger(__name__)

#: length of a segment added at the cursor with nothing after it (s)
ADD_S = 2.0
#: how far Left/Right move the cursor (s)
STEP_S = 0.5
#: poll period of the frame and prefill workers (ms)
POLL_MS = 50
#: what the message line says until an action has something to say
HINT = "drag a boundary · click a segment · 1–9 rename · Del · Ctrl+Z/Ctrl+Y · Ctrl+S saves"


class FrameWorker:
    """Decodes the frame nearest to the newest requested time in its own thread."""

    def __init__(self, session) -> None:
        self.session = session
        self._want: float | None = None
        self.frame: tuple[float, np.ndarray] | None = None
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="annotate-frames", daemon=True)
        if session.has_video:
            self._thread.start()

    def request(self, t_s: float) -> None:
        with self._cv:
            self._want = float(t_s)
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._want is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                t, self._want = self._want, None
            try:
                self.frame = (t, self.session.frame_at(t))
            except (EvimaeError, OSError, ValueError) as exc:
                log.warning("frame at %.2f s: %s", t, exc)

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()


class _SegmentItem(pg.LinearRegionItem):
    """One segment on the timeline; a click selects it."""

    def __init__(self, index: int, seg: Segment, colour: str, on_click, bounds) -> None:
        brush = QColor(colour)
        brush.setAlpha(90)
        super().__init__((seg.start_s, seg.end_s), brush=brush, bounds=bounds, swapMode="block")
        self.index = index
        self._on_click = on_click

    def mouseClickEvent(self, ev) -> None:  # pyqtgraph override
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_click(self.index)


class AnnotateWindow(QMainWindow):
    """The annotate window over an open session and its :class:`Annotation`. ``prefill``: a
    function (run in a worker thread) that returns a model's segments for the gaps."""

    def __init__(
        self,
        session,
        annotation: Annotation,
        prefill: Callable[[], list[Segment]] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.annotation = annotation
        self.setWindowTitle(f"evimae-stream annotate — {session.path}")
        self.selected: int | None = None
        #: ask to save unsaved changes on close (off for screenshots and scripts)
        self.confirm_close = True
        self.cursor_s = 0.0
        self.frames = FrameWorker(session)
        self._shown_t: float | None = None
        self._prefill_result: list | None = None
        self._build()
        self._shortcuts()
        self.rebuild()
        self.set_cursor(0.0)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._poll)
        self.timer.start(POLL_MS)
        if prefill is not None:
            self._start_prefill(prefill)

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.video = VideoView()
        if not self.session.has_video:
            self.video.clear("no video in this session")
        self.imu_plot = pg.PlotWidget()
        self.imu_plot.setBackground("w")
        self.imu_plot.setLabel("left", "|acc| (g)")
        self.imu_plot.addLegend(offset=(-5, 5))
        self.imu_plot.setMinimumHeight(300)
        self.video.setMaximumWidth(520)
        for k, (placement, stream) in enumerate(self.session.imu.items()):
            if len(stream.t):
                mag = np.linalg.norm(stream.acc, axis=1)
                curve = self.imu_plot.plot(stream.t, mag, pen=pg.intColor(k, 4), name=placement)
                curve.setDownsampling(auto=True)
                curve.setClipToView(True)
        self.lanes = pg.PlotWidget()
        self.lanes.setBackground("w")
        self.lanes.setFixedHeight(110)
        self.lanes.getAxis("left").setTicks([[(0.5, "labels")]])
        self.lanes.getAxis("bottom").setLabel("session time (s)")
        self.lanes.setYRange(0, 1, padding=0)
        self.lanes.setMouseEnabled(y=False)
        self.imu_plot.setMouseEnabled(y=False)
        span = max(self.annotation.duration_s, 1.0)
        for plot in (self.imu_plot, self.lanes):
            plot.disableAutoRange(axis="x")
            plot.setXRange(0, span, padding=0.01)
        self.imu_plot.setXLink(self.lanes)
        self.cursor_line = pg.InfiniteLine(0.0, movable=True, pen=pg.mkPen("#222", width=2))
        self.cursor_line.sigPositionChanged.connect(lambda line: self.set_cursor(line.value()))
        self.imu_cursor = pg.InfiniteLine(0.0, pen=pg.mkPen("#222", width=1))
        self.lanes.addItem(self.cursor_line)
        self.imu_plot.addItem(self.imu_cursor)
        self.lanes.scene().sigMouseClicked.connect(self._on_lanes_click)
        self.seg_items: list[_SegmentItem] = []
        self.seg_texts: list[pg.TextItem] = []

        self.label_combo = QComboBox()
        self.buttons = {}
        bar = QHBoxLayout()
        bar.addWidget(QLabel("action"))
        bar.addWidget(self.label_combo)
        actions = [
            ("add", "Add at cursor", self.add_at_cursor),
            ("rename", "Rename", lambda: self._edit(self._rename_selected)),
            ("delete", "Delete", lambda: self._edit(self._delete_selected)),
            ("undo", "Undo", lambda: self._edit(self.annotation.undo)),
            ("redo", "Redo", lambda: self._edit(self.annotation.redo)),
            ("save", "Save", self.save),
        ]
        for key, text, fn in actions:
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, fn=fn: fn())
            bar.addWidget(button)
            self.buttons[key] = button
        self.message = QLabel(HINT)
        bar.addWidget(self.message, 1)
        self.segment_list = QListWidget()
        self.segment_list.setMaximumWidth(420)
        for plot in (self.imu_plot, self.lanes):
            plot.getAxis("left").setWidth(64)
        self.segment_list.currentRowChanged.connect(self._on_row)

        central = QWidget()
        outer = QVBoxLayout(central)
        top = QHBoxLayout()  # the plots span the whole width: linked views align on screen
        top.addWidget(self.video, 3)
        top.addWidget(self.segment_list, 2)
        outer.addLayout(top, 2)
        outer.addWidget(self.imu_plot, 3)
        outer.addWidget(self.lanes, 0)
        outer.addLayout(bar, 0)
        self.setCentralWidget(central)

    def _shortcuts(self) -> None:
        keys = [
            (QKeySequence.StandardKey.Undo, lambda: self._edit(self.annotation.undo)),
            (QKeySequence.StandardKey.Redo, lambda: self._edit(self.annotation.redo)),
            ("Ctrl+Y", lambda: self._edit(self.annotation.redo)),
            (QKeySequence.StandardKey.Save, self.save),
        ]
        self._keys = [QShortcut(QKeySequence(k), self, activated=fn) for k, fn in keys]

    # -- drawing -------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Redraw the segments, the list and the label choices from the annotation."""
        ann = self.annotation
        for item in [*self.seg_items, *self.seg_texts]:
            self.lanes.removeItem(item)
        self.seg_items, self.seg_texts = [], []
        bounds = (0.0, ann.duration_s)
        self.segment_list.blockSignals(True)
        self.segment_list.clear()
        for i, seg in enumerate(ann.segments):
            colour = class_colour(seg.label, ann.names)
            item = _SegmentItem(i, seg, colour, self.select, bounds)
            item.sigRegionChangeFinished.connect(self._on_drag)
            self.lanes.addItem(item)
            flag = " ⚑" if ann.is_flagged(i) else ""
            text = pg.TextItem(seg.label + flag, color="#000", anchor=(0, 0.5))
            text.setPos(seg.start_s, 0.5)
            self.lanes.addItem(text)
            self.seg_items.append(item)
            self.seg_texts.append(text)
            mark = "  ⚑ recovered after a crash: check it" if flag else ""
            self.segment_list.addItem(f"{seg.start_s:7.2f}–{seg.end_s:7.2f} s  {seg.label}{mark}")
        if self.selected is not None and self.selected >= len(ann.segments):
            self.selected = None
        if self.selected is not None:
            self.segment_list.setCurrentRow(self.selected)
            item = self.seg_items[self.selected]
            colour = QColor(class_colour(ann.segments[self.selected].label, ann.names))
            colour.setAlpha(200)
            item.setBrush(colour)
            for line in item.lines:
                line.setPen(pg.mkPen("#111", width=3))
        self.segment_list.blockSignals(False)
        if [self.label_combo.itemText(i) for i in range(self.label_combo.count())] != ann.names:
            current = self.label_combo.currentText()
            self.label_combo.clear()
            self.label_combo.addItems([f"{n}" for n in ann.names])
            if current in ann.names:
                self.label_combo.setCurrentText(current)
        dirty = "  (unsaved changes)" if ann.dirty else ""
        self.setWindowTitle(f"evimae-stream annotate — {self.session.path}{dirty}")
        self.buttons["undo"].setEnabled(ann.can_undo)
        self.buttons["redo"].setEnabled(ann.can_redo)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        log.info("%s", text)

    # -- the user's actions --------------------------------------------------------------------
    def _edit(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except EvimaeError as exc:
            self.show_message(str(exc))
        self.rebuild()

    def select(self, index: int | None) -> None:
        """Select segment ``index`` (None: nothing)."""
        self.selected = index
        self.rebuild()

    def set_cursor(self, t_s: float) -> None:
        """Move the cursor to session time ``t_s`` (the frame there is shown)."""
        self.cursor_s = float(min(max(t_s, 0.0), self.annotation.duration_s))
        for line in (self.cursor_line, self.imu_cursor):
            if abs(line.value() - self.cursor_s) > 1e-9:
                line.blockSignals(True)
                line.setValue(self.cursor_s)
                line.blockSignals(False)
        self.frames.request(self.cursor_s)

    def _label_choice(self) -> str:
        label = self.label_combo.currentText()
        if not label:
            raise InputError("no action name to label with; type one into the action box")
        return label

    def add_at_cursor(self, label: str | None = None) -> None:
        """Label from the cursor to the next segment (at most :data:`ADD_S` s)."""

        def add() -> None:
            ann, t = self.annotation, self.cursor_s
            nxt = [s.start_s for s in ann.segments if s.start_s > t]
            end = min([t + ADD_S, *nxt])
            self.selected = ann.add(t, end, label or self._label_choice())

        self._edit(add)

    def _rename_selected(self, label: str | None = None) -> None:
        if self.selected is None:
            raise InputError("select a segment first (click it)")
        self.annotation.rename(self.selected, label or self._label_choice())

    def _delete_selected(self) -> None:
        if self.selected is None:
            raise InputError("select a segment first (click it)")
        self.annotation.delete(self.selected)
        self.selected = None

    def save(self) -> Path | None:
        try:
            path = self.annotation.save()
        except EvimaeError as exc:
            self.show_message(str(exc))
            return None
        self.show_message(f"saved {path} ({len(self.annotation.segments)} segments)")
        self.rebuild()
        return path

    def _on_drag(self, item: _SegmentItem) -> None:
        lo, hi = item.getRegion()
        self._edit(lambda: self.annotation.move(item.index, lo, hi))

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.annotation.segments):
            self.selected = row
            self.set_cursor(self.annotation.segments[row].start_s)
            self.rebuild()

    def _on_lanes_click(self, ev) -> None:
        if ev.isAccepted():  # a segment took it
            return
        t = self.lanes.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
        self.set_cursor(t)
        self.select(self.annotation.index_at(self.cursor_s))

    def keyPressEvent(self, event) -> None:  # Qt override
        text, key = event.text(), event.key()
        names = self.annotation.names
        if len(text) == 1 and text.isdigit() and 1 <= int(text) <= min(len(names), 9):
            label = names[int(text) - 1]
            if self.selected is not None:
                self._edit(lambda: self._rename_selected(label))
            else:
                self.add_at_cursor(label)
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self._edit(self._delete_selected)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            self.set_cursor(self.cursor_s + (STEP_S if key == Qt.Key.Key_Right else -STEP_S))
        elif key == Qt.Key.Key_Escape:
            self.select(None)
        else:
            super().keyPressEvent(event)

    # -- workers -------------------------------------------------------------------------------
    def _start_prefill(self, prefill: Callable[[], list[Segment]]) -> None:
        self.show_message("running the model over the session to prefill the gaps…")

        def work() -> None:
            try:
                self._prefill_result = list(prefill())
            except Exception as exc:  # shown; the labels stay as they are
                log.exception("prefill failed")
                self._prefill_result = [exc]

        threading.Thread(target=work, name="annotate-prefill", daemon=True).start()

    def _poll(self) -> None:
        frame = self.frames.frame
        if frame is not None and frame[0] != self._shown_t:
            self._shown_t = frame[0]
            self.video.set_frame(round(frame[0] * 1e9), frame[1])
        result, self._prefill_result = self._prefill_result, None
        if result is not None:
            if result and isinstance(result[0], Exception):
                self.show_message(f"prefill failed: {result[0]}")
                return
            n = self.annotation.fill_gaps(result)
            self.show_message(f"prefilled {n} segments from the model's predictions (Undo)")
            self.rebuild()

    def closeEvent(self, event) -> None:  # Qt override
        if self.annotation.dirty and self.confirm_close:
            buttons = QMessageBox.StandardButton
            answer = QMessageBox.question(
                self, "unsaved labels", f"Save the label changes to {self.session.path}?",
                buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save,
            )  # fmt: skip
            if answer == buttons.Cancel or (answer == buttons.Save and self.save() is None):
                event.ignore()
                return
        if self.annotation.dirty:
            log.warning("%s: closed with unsaved label changes", self.session.path)
        self.timer.stop()
        self.frames.close()
        super().closeEvent(event)
