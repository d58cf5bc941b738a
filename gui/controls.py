"""Start/stop, record to a folder, and the replay controls (pause, seek slider, speed).

Every control calls the :class:`~gui.protocol.MonitorSource` and shows what it said: a control
that fails reports its one-line error through :attr:`Controls.on_message` instead of raising in
the event loop. The slider does not track while dragged (one seek on release), and status
updates never move it under the user's hand.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from evimae_stream.errors import EvimaeError
from gui.protocol import MAX_SPEED, SPEEDS, MonitorSource, MonitorStatus

log = logging.getLogger(__name__)

#: slider steps over the whole session
SLIDER_STEPS = 1000


def speed_text(speed: float | None) -> str:
    """``2.0`` → ``2×``; None → ``max (8×)`` (:data:`~gui.protocol.MAX_SPEED`)."""
    return f"max ({MAX_SPEED:g}×)" if speed is None else f"{speed:g}×"


def clock_text(t_s: float) -> str:
    """Seconds as ``m:ss.s``."""
    m, s = divmod(max(t_s, 0.0), 60.0)
    return f"{int(m)}:{s:04.1f}"


class Controls(QWidget):
    """The control bar. Set :attr:`record_folder` to record without asking for a folder."""

    def __init__(self, source: MonitorSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.record_folder: Path | None = None
        self.on_message: Callable[[str], None] = lambda text: log.info("%s", text)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.start_button = QPushButton("Stop")
        self.start_button.setCheckable(True)
        self.start_button.setChecked(True)
        self.record_button = QPushButton("Record…")
        self.record_button.setCheckable(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, SLIDER_STEPS)
        self.seek_slider.setTracking(False)
        self.position_label = QLabel("0:00.0 / 0:00.0")
        self.speed_combo = QComboBox()
        for speed in SPEEDS:
            self.speed_combo.addItem(speed_text(speed), speed)
        for w in (self.start_button, self.record_button, self.pause_button):
            w.setMinimumWidth(110)
        self.start_button.setMaximumWidth(160)
        self.record_button.setMaximumWidth(160)
        layout.addWidget(self.start_button)
        layout.addWidget(self.record_button)
        layout.addSpacing(16)
        speed_label = QLabel("speed")
        self.replay_widgets = (
            self.pause_button,
            self.seek_slider,
            self.position_label,
            speed_label,
            self.speed_combo,
        )
        layout.addWidget(self.pause_button)
        layout.addWidget(self.seek_slider, 1)
        layout.addWidget(self.position_label)
        layout.addWidget(speed_label)
        layout.addWidget(self.speed_combo)
        self.live_stretch = QWidget()  # keeps the buttons left when the replay widgets hide
        layout.addWidget(self.live_stretch, 1)
        self.start_button.toggled.connect(self._on_start)
        self.record_button.toggled.connect(self._on_record)
        self.pause_button.toggled.connect(self._on_pause)
        self.seek_slider.valueChanged.connect(self._on_seek)
        self.speed_combo.currentIndexChanged.connect(self._on_speed)
        self._duration_s = 0.0
        self._replay_shown: bool | None = None

    # -- actions -------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], object]) -> bool:
        try:
            fn()
        except EvimaeError as exc:
            self.on_message(f"{what}: {exc}")
            return False
        except Exception as exc:  # a control must never take the window down
            log.exception("%s failed", what)
            self.on_message(f"{what} failed: {exc}")
            return False
        return True

    def _on_start(self, running: bool) -> None:
        self.start_button.setText("Stop" if running else "Start")
        action = self.source.start if running else self.source.stop
        self._call("start" if running else "stop", action)

    def choose_folder(self) -> Path | None:
        """The folder to record into: :attr:`record_folder`, else ask with a dialog."""
        if self.record_folder is not None:
            return Path(self.record_folder)
        chosen = QFileDialog.getExistingDirectory(self, "Record sessions into folder")
        return Path(chosen) if chosen else None

    def _on_record(self, on: bool) -> None:
        if not on:
            self._call("stop recording", self.source.stop_recording)
            self.record_button.setText("Record…")
            return
        folder = self.choose_folder()
        ok = folder is not None and self._call(
            "record", lambda: self.on_message(f"recording to {self.source.start_recording(folder)}")
        )
        if not ok:
            self.record_button.blockSignals(True)
            self.record_button.setChecked(False)
            self.record_button.blockSignals(False)
            return
        self.record_button.setText("Stop recording")

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        action = self.source.pause if paused else self.source.resume
        self._call("pause" if paused else "resume", action)

    def _on_seek(self, value: int) -> None:
        t_s = value / SLIDER_STEPS * self._duration_s
        self._call("seek", lambda: self.source.seek(t_s))

    def _on_speed(self, index: int) -> None:
        speed = self.speed_combo.itemData(index)
        self._call("speed", lambda: self.source.set_speed(speed))

    # -- state from the source -----------------------------------------------------------------
    def update_status(self, status: MonitorStatus) -> None:
        """Reflect ``status`` (replay widgets only in replay; slider follows the position)."""
        if self._replay_shown is not status.replay:
            for w in self.replay_widgets:
                w.setVisible(status.replay)
            self.live_stretch.setVisible(not status.replay)
            self._replay_shown = status.replay
        if self.start_button.isChecked() != status.running:
            self.start_button.blockSignals(True)
            self.start_button.setChecked(status.running)
            self.start_button.setText("Stop" if status.running else "Start")
            self.start_button.blockSignals(False)
        if not status.replay:
            return
        self._duration_s = status.duration_s
        self.position_label.setText(
            f"{clock_text(status.position_s)} / {clock_text(status.duration_s)}"
        )
        if not self.seek_slider.isSliderDown() and status.duration_s > 0:
            value = round(status.position_s / status.duration_s * SLIDER_STEPS)
            if value != self.seek_slider.value():
                self.seek_slider.blockSignals(True)
                self.seek_slider.setValue(value)
                self.seek_slider.blockSignals(False)
        index = self.speed_combo.findData(status.speed)
        if index < 0 and status.speed is not None:  # a --speed the menu lacks: add it in order
            combo = self.speed_combo
            index = next(
                (i for i in range(combo.count()) if (combo.itemData(i) or math.inf) > status.speed),
                combo.count(),
            )
            self.speed_combo.blockSignals(True)
            self.speed_combo.insertItem(index, speed_text(status.speed), status.speed)
            self.speed_combo.blockSignals(False)
        if index >= 0 and index != self.speed_combo.currentIndex():
            self.speed_combo.blockSignals(True)
            self.speed_combo.setCurrentIndex(index)
            self.speed_combo.blockSignals(False)
        if self.pause_button.isChecked() != status.paused:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(status.paused)
            self.pause_button.setText("Resume" if status.paused else "Pause")
            self.pause_button.blockSignals(False)
