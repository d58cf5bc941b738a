"""``run_gui``: open the monitor window over a source, optionally save a screenshot and exit.

Used by ``evimae-stream --gui`` (the runtime passes its pipeline wrapped as a
:class:`~gui.protocol.MonitorSource`) and by ``python -m gui``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QEventLoop, QTimer
from PyQt6.QtWidgets import QApplication

from evimae_stream.errors import InputError
from gui.main_window import MonitorWindow
from gui.protocol import MonitorSource

log = logging.getLogger(__name__)

#: default window size (also the screenshot size)
WINDOW_SIZE = (1400, 900)
#: seconds to run before a screenshot when no duration is given
SCREENSHOT_AFTER_S = 4.0


def _headless() -> bool:
    """Linux without an X or Wayland display (and no platform chosen)."""
    return (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )


def ensure_app(offscreen_if_headless: bool = False) -> QApplication:
    """The process's QApplication (created on first use). Without a display it renders
    offscreen when ``offscreen_if_headless`` (screenshots), else raises InputError rather than
    letting Qt abort the process."""
    app = QApplication.instance()
    if app is None and _headless():
        if not offscreen_if_headless:
            raise InputError(
                "--gui: no display (DISPLAY/WAYLAND_DISPLAY unset); run it on a desktop, or "
                "use --screenshot PATH to render offscreen"
            )
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("evimae-stream")
    return app  # type: ignore[return-value]


def save_screenshot(window: MonitorWindow, path: str | Path) -> Path:
    """Refresh once and save the window as a PNG; raises InputError when it cannot be written."""
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    window.refresh()
    QApplication.processEvents()
    if not window.grab().save(str(out), "PNG"):
        raise InputError(f"--screenshot {out}: could not write the PNG; check the path")
    log.info("screenshot saved to %s", out)
    return out


def _stop_after(source: MonitorSource, duration: float, finish) -> QTimer:
    """Call ``finish`` once ``duration`` seconds have run: session seconds for a replay (the
    CLI's ``--duration``, whatever the speed), wall seconds live. Polled on a QTimer."""
    started = time.monotonic()
    timer = QTimer()

    def check() -> None:
        status = source.status()
        ran = status.position_s if status.replay else time.monotonic() - started
        if ran >= duration or (status.replay and status.position_s >= status.duration_s > 0):
            timer.stop()
            finish()

    timer.timeout.connect(check)
    timer.start(20)
    return timer


def run_gui(
    source: MonitorSource,
    screenshot: str | Path | None = None,
    duration: float | None = None,
    title: str = "evimae-stream monitor",
    start: bool = True,
    record_folder: str | Path | None = None,
) -> int:
    """Show the monitor over ``source`` until the window is closed, or for ``duration`` seconds.

    With ``screenshot`` the window is saved as a PNG at the end (after ``duration``, default
    :data:`SCREENSHOT_AFTER_S`) and the function returns. ``start`` starts the source first.
    The source is closed on return. Returns the exit code (0; 1 if the screenshot failed).
    ``record_folder``: where the Record button records (``--record DIR``; else it asks).
    """
    if duration is not None and not duration > 0:
        raise InputError(f"--duration must be a positive number of seconds, got {duration}")
    if screenshot is not None and duration is None:
        duration = SCREENSHOT_AFTER_S
    app = ensure_app(offscreen_if_headless=screenshot is not None)  # keep it alive
    window = MonitorWindow(source, title=title)
    window.resize(*WINDOW_SIZE)
    if record_folder is not None:
        window.controls.record_folder = Path(record_folder)
    result = {"code": 0}
    loop = QEventLoop()
    window.closed.connect(loop.quit)

    def finish() -> None:
        if screenshot is not None:
            try:
                save_screenshot(window, screenshot)
            except InputError as exc:
                log.error("%s", exc)
                result["code"] = 1
        window.close()

    # Ctrl-C closes the window: Python handles signals only between Qt events, so wake it up
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    try:
        if start:
            source.start()
        window.show()
        if duration is not None:
            until = _stop_after(source, duration, finish)
        loop.exec()
    finally:
        if duration is not None:
            until.stop()
        wake.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        window.timer.stop()
        source.close()
        app.processEvents()
    return result["code"]
