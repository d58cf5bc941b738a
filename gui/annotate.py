"""``evimae-stream --gui --replay SESSION --annotate [--model DIR]``: open a session's labels for
review in the :class:`~gui.annotate_window.AnnotateWindow`, prefilled with a model's
predictions where it has none, and show it (or save a screenshot of it)."""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import Qt

from evimae_stream.sessions.annotation import Annotation
from evimae_stream.types import Segment
from gui.annotate_window import AnnotateWindow

log = logging.getLogger(__name__)


def open_annotate(
    session_path, model_dir=None, config=None, names=None
) -> tuple[AnnotateWindow, object]:
    """The annotate window over the session at ``session_path`` (and the open session, for
    the caller to close); ``model_dir``: prefill the unlabelled gaps with its predictions."""
    from evimae_stream.sessions import open_session

    session = open_session(session_path)
    annotation = Annotation.open(session)
    for name in names or ():
        if name not in annotation.names:
            annotation.names.append(name)
    prefill = None
    if model_dir is not None:
        from evimae_stream.artifact import load_artifact, model_hash
        from evimae_stream.runtime.config import RuntimeConfig
        from evimae_stream.runtime.inputs import ModelSpec
        from evimae_stream.runtime.prefill import predicted_segments
        from evimae_stream.runtime.run import Composer, LoadedModel

        model, meta = load_artifact(model_dir)
        loaded = LoadedModel(model, ModelSpec.from_meta(meta), model_hash(model_dir))
        composer = Composer(loaded, config or RuntimeConfig())

        def prefill() -> list[Segment]:
            return predicted_segments(composer, session)

    return AnnotateWindow(session, annotation, prefill), session


def run_annotate(session_path, model_dir=None, config=None, names=None, screenshot=None) -> int:
    """Show the annotate window until it is closed (with ``screenshot``: save it as a PNG once
    the first frame is shown, and close). Returns the exit code."""
    from PyQt6.QtCore import QEventLoop

    from gui.app import WINDOW_SIZE, ensure_app

    app = ensure_app(offscreen_if_headless=screenshot is not None)
    window, session = open_annotate(session_path, model_dir, config, names)
    window.resize(*WINDOW_SIZE)
    window.confirm_close = screenshot is None
    code = 0
    try:
        window.show()
        if screenshot is not None:
            code = 0 if save_window(window, screenshot) else 1
        else:
            loop = QEventLoop()
            window.destroyed.connect(loop.quit)
            window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            loop.exec()
    finally:
        if screenshot is not None:
            window.close()
        session.close()
        app.processEvents()
    return code


def save_window(window: AnnotateWindow, path, wait_s: float = 5.0) -> bool:
    """Wait (up to ``wait_s``) for the frame at the cursor, then save the window as a PNG."""
    import time

    from PyQt6.QtWidgets import QApplication

    until = time.monotonic() + wait_s
    while window.session.has_video and window._shown_t is None and time.monotonic() < until:
        QApplication.processEvents()
        time.sleep(0.02)
    window._poll()
    QApplication.processEvents()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out), "PNG")
    if not ok:
        log.error("--screenshot %s: could not write the PNG; check the path", out)
    return ok
