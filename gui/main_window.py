"""The monitor window: video, IMU traces, the predicted action, the timeline, sensor health,
controls, and latency/backend in the status bar.

The GUI thread only paints: a QTimer (~30 Hz) pulls snapshots from the
:class:`~gui.protocol.MonitorSource` (rings, health, new prediction events, status); the
pipeline and the drivers run in their own threads. Only the newest camera frame is converted,
plots are redrawn from ring snapshots, and the health table is refreshed at 10 Hz, so the cost
of a refresh does not grow with the replay speed.
"""

from __future__ import annotations

import logging

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from evimae_stream.errors import EvimaeError
from evimae_stream.runtime.events import Prediction
from gui.controls import Controls, speed_text
from gui.health_panel import HealthPanel
from gui.imu_plots import ImuPlots
from gui.label_bar import LabelBar
from gui.prediction_panel import PredictionPanel
from gui.protocol import MonitorSource, MonitorStatus
from gui.timeline import Timeline
from gui.video_view import VideoView
from gui.vocabulary_editor import VocabularyEditor

log = logging.getLogger(__name__)

#: refresh period of the window (ms): about 30 Hz
REFRESH_MS = 33
#: the health table refreshes every this many ticks
HEALTH_EVERY = 3
#: width shares of the left column (camera, current action) and the right one (IMU, health)
LEFT_STRETCH, RIGHT_STRETCH = 5, 8


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    lay = QVBoxLayout(box)
    lay.setContentsMargins(4, 4, 4, 4)
    lay.addWidget(widget)
    return box


def status_text(st: MonitorStatus) -> str:
    """The status bar line: backend, latency p50/p95, state, replay position, recording."""
    backend = st.backend + (f" {st.precision}" if st.precision else "")
    if st.latency_p50_ms is None:
        latency = "latency —"
    else:
        latency = f"latency p50 {st.latency_p50_ms:.0f} ms · p95 {st.latency_p95_ms:.0f} ms"
    state = "running" if st.running else "stopped"
    if st.replay:
        state = "paused" if st.paused else state
        state += f" · replay {st.position_s:.1f}/{st.duration_s:.1f} s at {speed_text(st.speed)}"
    parts = [f"backend {backend}", latency, state]
    if st.skipped:
        parts.append(f"skipped {st.skipped} windows (inference behind; the newest won)")
    if st.recording:
        parts.append(f"● REC {st.recording}")
    if st.message:
        parts.append(st.message)
    return "   |   ".join(parts)


class MonitorWindow(QMainWindow):
    """The main window over one :class:`MonitorSource`; :meth:`refresh` is one pull-and-paint.
    ``closed`` is emitted when the window is closed."""

    closed = pyqtSignal()

    def __init__(self, source: MonitorSource, title: str = "evimae-stream monitor") -> None:
        super().__init__()
        self.source = source
        self.setWindowTitle(title)
        buffer = source.buffer
        self.video = VideoView()
        self.imu = ImuPlots(tuple(buffer.imu))
        self.prediction = PredictionPanel()
        self.timeline = Timeline()
        self.timeline.set_classes(source.classes)
        self.timeline.set_truth(source.labels)
        self.health = HealthPanel(buffer.config.stream_names())
        self.controls = Controls(source)
        self.controls.on_message = self.show_message
        self.status_label = QLabel("")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_label, 1)

        # left: the camera (as tall as its aspect ratio wants at the column's width) over the
        # current action; right: the IMU plots, which take every pixel the health table (sized
        # to its rows) leaves; under both, a compact timeline and the controls
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(6)
        top = QHBoxLayout()
        top.setSpacing(6)
        left = QVBoxLayout()
        left.setSpacing(6)
        left.addWidget(_boxed("head camera", self.video), 0)
        left.addWidget(_boxed("current action", self.prediction), 1)
        control = getattr(source, "vocabulary", None)  # a language-aligned model's
        self.vocabulary = VocabularyEditor(control, self.show_message) if control else None
        if self.vocabulary is not None:
            left.addWidget(_boxed("vocabulary (open-set recognition)", self.vocabulary), 0)
        right = QVBoxLayout()
        right.setSpacing(6)
        right.addWidget(_boxed("IMU acceleration (last 10 s)", self.imu), 1)
        right.addWidget(_boxed("sensor health", self.health), 0)
        top.addLayout(left, LEFT_STRETCH)
        top.addLayout(right, RIGHT_STRETCH)
        outer.addLayout(top, 1)
        outer.addWidget(_boxed("timeline", self.timeline), 0)
        self.label_bar = LabelBar(source.labeller) if source.labeller is not None else None
        if self.label_bar is not None:
            self.label_bar.on_message = self.show_message
            outer.addWidget(self.label_bar, 0)
        outer.addWidget(self.controls, 0)
        self.setCentralWidget(central)

        self.latest: Prediction | None = None
        self.predictions_seen = 0
        self._message = ""
        self._ticks = 0
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(lambda: self.refresh(force=False))
        self.timer.start()

    def show_message(self, text: str) -> None:
        """Show a one-line message (a control's result or error) in the status bar."""
        self._message = text
        self.statusBar().showMessage(text, 8000)
        log.info("%s", text)

    def refresh(self, force: bool = True) -> None:
        """Pull once from the source and repaint what changed. The timer calls it with
        ``force=False`` (the health table then refreshes every :data:`HEALTH_EVERY` ticks)."""
        self._ticks += 1
        try:
            self._refresh(force or self._ticks % HEALTH_EVERY == 0)
        except EvimaeError as exc:
            self.show_message(str(exc))
        except Exception:  # a bad snapshot must not kill the event loop
            log.exception("monitor refresh failed")

    def _refresh(self, with_health: bool) -> None:
        src = self.source
        cam = src.buffer.camera
        if cam is not None:
            latest = cam.latest()
            if latest is not None:
                self.video.set_frame(*latest)
        else:
            self.video.clear("no camera in this rig")
        for pred in src.pull_predictions():
            self.timeline.add_prediction(pred)
            self.latest = pred
            self.predictions_seen += 1
        for event in getattr(src, "pull_segments", list)():  # sources with an interval head
            self.timeline.add_segment(event)
        if self.latest is not None and self.prediction.current is not self.latest:
            self.prediction.show_prediction(self.latest)
        status = src.status()
        if self.label_bar is not None:  # the user's labels so far, in the timeline's lower lane
            self.label_bar.update_state()
            self.timeline.set_truth(src.labeller.timeline(), check_vocabulary=False)
        self.imu.update_from(src.buffer, status.time_scale)
        self.timeline.redraw(status.timeline_s)
        self.controls.update_status(status)
        self.status_label.setText(status_text(status))
        if with_health:
            self.health.update_health(src.health())
        if self.vocabulary is not None:
            self.vocabulary.poll()

    def keyPressEvent(self, event) -> None:  # Qt override: number keys label
        if self.label_bar is None or not self.label_bar.handle_key(event.text()):
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:  # Qt override
        self.timer.stop()
        super().closeEvent(event)
        self.closed.emit()
