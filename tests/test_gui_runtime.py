"""The monitor over the real runtime pipeline and a real paced replay, offscreen: "max" is one
speed everywhere."""

from __future__ import annotations

from argparse import Namespace

import pytest

import gui.launch
from evimae_stream.runtime.pipeline import RuntimeConfig
from gui.controls import speed_text
from gui.main_window import MonitorWindow
from gui.source import MAX_SPEED, SPEEDS
from tests.runtime_helpers import make_artifact, make_session

pytestmark = [pytest.mark.gui, pytest.mark.slow]

STRIDE_S = 0.5
WINDOW_S = 2.0  # make_artifact's window (and video span)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny random model and a labelled 20 s synthetic session (4 IMUs, 128×96 video)."""
    root = tmp_path_factory.mktemp("gui_runtime")
    return make_artifact(root / "model", window_s=WINDOW_S), make_session(
        root / "session", seconds=20.0
    )


def _config() -> RuntimeConfig:
    return RuntimeConfig(stride_s=STRIDE_S, topk=5, backend="eager")


def test_speed_max_is_one_constant_for_the_command_line_and_the_menu(assets, monkeypatch, qtbot):
    art, session = assets
    shown = []

    def show(source, **_kwargs) -> int:  # instead of the blocking window: keep the source
        shown.append(source)
        return 0

    monkeypatch.setattr(gui.launch, "run_gui", show)
    args = Namespace(speed="max", screenshot=None, duration=None)
    assert gui.launch.launch(args, art, None, _config(), session, None) == 0  # --speed max
    src = shown[-1]
    try:
        assert src.replay.speed == MAX_SPEED == 8.0
        assert src.status().speed is None
        win = MonitorWindow(src)
        qtbot.addWidget(win)
        win.refresh()
        combo = win.controls.speed_combo
        assert combo.currentText() == speed_text(None) == "max (8×)"
        assert [combo.itemData(i) for i in range(combo.count())] == list(SPEEDS)
        combo.setCurrentIndex(combo.findData(2.0))
        assert src.replay.speed == 2.0
        combo.setCurrentIndex(combo.findData(None))  # the menu's max: the same constant
        assert src.replay.speed == MAX_SPEED and src.status().speed is None
    finally:
        src.close()
    # no --speed: the monitor plays the session (the bundled demo too) at 1×
    gui.launch.launch(Namespace(speed=None, screenshot=None, duration=None), art, None,
                      _config(), session, None)  # fmt: skip
    try:
        assert shown[-1].replay.speed == 1.0 and shown[-1].status().speed == 1.0
    finally:
        shown[-1].close()
    # a speed the menu lacks is added to it, in order
    gui.launch.launch(Namespace(speed="3", screenshot=None, duration=None), art, None,
                      _config(), session, 3.0)  # fmt: skip
    src = shown[-1]
    try:
        win = MonitorWindow(src)
        qtbot.addWidget(win)
        win.refresh()
        combo = win.controls.speed_combo
        assert combo.currentText() == "3×" and src.replay.speed == 3.0
        assert [combo.itemData(i) for i in range(combo.count())] == [1.0, 2.0, 3.0, 4.0, None]
    finally:
        src.close()
