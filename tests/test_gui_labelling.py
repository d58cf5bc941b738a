"""The monitor's label bar on the live synthetic rig (key presses and buttons into a recording)
and the annotate window (drag, rename, delete, undo, save, prefill), offscreen."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.run import plan_sources
from evimae_stream.sessions import open_session
from evimae_stream.sessions.labels import LABELS_BACKUP, save_labels
from evimae_stream.types import Segment
from gui.annotate import open_annotate
from gui.main_window import MonitorWindow
from gui.runtime_source import live_pipeline_source
from tests.helpers.runtime import make_artifact, make_session

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_artifact(tmp_path_factory.mktemp("label_model") / "model")


def _live_window(model, qtbot, names=None):
    plan = plan_sources(["synthetic"] * 4, None)
    config = RuntimeConfig(backend="eager", topk=5)
    src = live_pipeline_source(model, plan, config, label_names=names)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    src.start()
    return src, win


def test_label_bar_keys_and_buttons_label_the_recording(model, qtbot, tmp_path):
    src, win = _live_window(model, qtbot, names=["walk", "stir", "jump"])
    try:
        bar = win.label_bar
        assert [b.text() for b in bar.buttons] == ["1 walk", "2 stir", "3 jump"]
        win.controls.record_folder = tmp_path
        qtbot.mouseClick(win.controls.record_button, Qt.MouseButton.LeftButton)
        rec = src.status().recording
        assert rec is not None
        qtbot.wait(600)
        qtbot.keyClick(win, "1")
        assert bar.buttons[0].isChecked() and "walk since" in bar.state.text()
        qtbot.wait(800)
        qtbot.keyClick(win, "1")  # again: ends walk
        qtbot.wait(300)
        qtbot.mouseClick(bar.buttons[2], Qt.MouseButton.LeftButton)  # a button starts jump
        qtbot.wait(700)
        qtbot.keyClick(win, "2")  # another action ends jump
        qtbot.wait(500)
        win.refresh()
        lane = [s.label for s in win.timeline.truth]
        assert lane == ["walk", "jump", "stir"]  # live on the timeline, the open one too
        qtbot.mouseClick(win.controls.record_button, Qt.MouseButton.LeftButton)  # stop: ends stir
        qtbot.waitUntil(lambda: (tmp_path / rec / "session.json").exists(), timeout=10_000)
        src.close()
        with open_session(rec) as s:
            assert s.info["complete"]
            assert [seg.label for seg in s.labels] == ["walk", "jump", "stir"]
            walk, jump, stir = s.labels
            assert 0.6 < walk.end_s - walk.start_s < 2.0
            assert jump.end_s == stir.start_s < stir.end_s  # ended when the recording stopped,
            assert stir.end_s <= s.duration_s + 2.0  # which can be after the last tick's data
            assert s.meta["label_names"] == ["walk", "stir", "jump"]
    finally:
        src.close()


def test_label_bar_defaults_to_the_models_classes_and_is_absent_in_a_replay(model, qtbot):
    src, win = _live_window(model, qtbot)
    try:
        assert win.label_bar.labeller.classes[:2] == ["idle", "walking"]
    finally:
        src.close()


@pytest.fixture
def labelled(tmp_path):
    path = make_session(tmp_path / "s", seconds=12.0)
    save_labels(path, [Segment(0.0, 4.0, "walking"), Segment(4.0, 9.0, "idle")])
    return path


def test_annotate_window_drag_rename_delete_undo_save(labelled, qtbot):
    win, session = open_annotate(labelled)
    qtbot.addWidget(win)
    try:
        win.show()
        assert len(win.seg_items) == 2
        qtbot.waitUntil(lambda: win._shown_t is not None, timeout=10_000)  # the frame decoded
        item = win.seg_items[0]
        item.setRegion((0.5, 5.0))  # a drag past the neighbour stops at it
        item.sigRegionChangeFinished.emit(item)
        assert win.annotation.segments[0] == Segment(0.5, 4.0, "walking")
        win.select(1)
        qtbot.keyClick(win, "2")  # the second name: rename the selected segment
        assert win.annotation.segments[1].label == win.annotation.names[1]
        qtbot.keyClick(win, Qt.Key.Key_Delete)
        assert len(win.annotation.segments) == 1
        qtbot.mouseClick(win.buttons["undo"], Qt.MouseButton.LeftButton)
        assert len(win.annotation.segments) == 2 and len(win.seg_items) == 2
        win.set_cursor(10.0)
        win.select(None)
        win.label_combo.setCurrentText("walking")
        qtbot.mouseClick(win.buttons["add"], Qt.MouseButton.LeftButton)
        end = min(12.0, win.annotation.duration_s)  # 2 s, clipped to the session
        assert win.annotation.segments[-1] == Segment(10.0, end, "walking")
        qtbot.mouseClick(win.buttons["save"], Qt.MouseButton.LeftButton)
        assert "saved" in win.message.text()
        assert (labelled / LABELS_BACKUP).exists()
    finally:
        win.close()
        session.close()
    with open_session(labelled) as s:
        assert s.labels[0] == Segment(0.5, 4.0, "walking") and len(s.labels) == 3


def test_annotate_prefills_the_gaps_from_a_models_predictions(model, tmp_path, qtbot):
    path = make_session(tmp_path / "s", seconds=12.0)
    save_labels(path, [Segment(0.0, 3.0, "walking")])
    win, session = open_annotate(path, model, RuntimeConfig(backend="eager"))
    win.confirm_close = False  # it closes with the prefill unsaved: no question box
    qtbot.addWidget(win)
    try:
        qtbot.waitUntil(lambda: "prefilled" in win.message.text(), timeout=60_000)
        segs = win.annotation.segments
        assert segs[0] == Segment(0.0, 3.0, "walking")  # the user's label stays
        assert len(segs) > 1 and all(s.start_s >= 3.0 for s in segs[1:])
        assert win.annotation.dirty
        assert win.annotation.undo() and win.annotation.segments == [segs[0]]
    finally:
        win.close()
        session.close()


def test_closing_with_unsaved_changes_asks_and_saves_or_stays(labelled, qtbot, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    win, session = open_annotate(labelled)
    qtbot.addWidget(win)
    try:
        win.show()
        win.annotation.rename(0, "idle")
        answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save]
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
        assert not win.close() and win.isVisible()  # Cancel: the window stays
        assert win.close()  # Save: saved, then closed
    finally:
        session.close()
    with open_session(labelled) as s:
        assert s.labels[0].label == "idle"
