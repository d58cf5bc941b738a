"""The monitor over the real runtime pipeline and a real paced replay, offscreen: predictions stay
on session time through pause, seek and speed changes, a seek restarts the windows cleanly,
Start/Stop stops and restarts the pipeline, and "max" is one speed everywhere."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PyQt6.QtCore import Qt

import gui.launch
from evimae_stream.commands.run import monitor_speed
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.sessions import open_session
from gui.controls import Controls, speed_text
from gui.main_window import MonitorWindow
from gui.protocol import MAX_SPEED, SPEEDS
from gui.runtime_source import replay_pipeline_source
from tests.helpers.runtime import make_artifact, make_session

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


@pytest.fixture
def monitor(assets, qtbot):
    """The window over ``evimae-stream --gui --replay`` at 1× (not started)."""
    art, session = assets
    src = replay_pipeline_source(art, session, 1.0, _config())
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield src, win
    src.close()


class Arrivals:
    """What the window shows each time a new prediction reaches it, sampled every 10 ms: the
    prediction, the replay position and the timeline's "now" at that moment."""

    def __init__(self, src, win, qtbot) -> None:
        self.src, self.win, self.qtbot = src, win, qtbot
        self.seen = win.predictions_seen
        self.rows: list[dict] = []

    def poll(self) -> None:
        win = self.win
        if win.predictions_seen != self.seen and win.latest is not None:
            self.seen = win.predictions_seen
            p = win.latest
            self.rows.append(
                {
                    "t_s": p.t_s,
                    "t_ref_s": p.t_ref_s,
                    "label": p.label,
                    "emitted": p.emitted_unix,
                    "position": self.src.status().position_s,
                    "now_line": win.timeline.now_line.value(),
                }
            )

    def until(self, cond, timeout_s: float = 30.0) -> None:
        """Poll until ``cond()`` holds (fails the test after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while not cond():
            assert time.monotonic() < deadline, "timed out waiting"
            self.qtbot.wait(10)
            self.poll()

    def play(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        self.until(lambda: time.monotonic() >= deadline)

    def since(self, wall: float) -> list[dict]:
        """Predictions emitted after UNIX time ``wall`` (a control action)."""
        return [r for r in self.rows if r["emitted"] > wall]


def _assert_on_session_time(rows: list[dict], what: str) -> None:
    """Each prediction sits on the session's time axis: its window ends at its tick, at most
    two strides behind the replay position (and the timeline's now line) when it arrives,
    never ahead of it."""
    assert rows, f"{what}: no predictions"
    for r in rows:
        lag = r["position"] - r["t_s"]
        assert -0.05 <= lag <= 2 * STRIDE_S, f"{what}: {r}"
        assert r["now_line"] == pytest.approx(r["position"], abs=0.2), f"{what}: {r}"
        if r["t_ref_s"] is not None:
            assert r["t_s"] - STRIDE_S <= r["t_ref_s"] <= r["t_s"], f"{what}: {r}"


def _assert_model_rings_on_session_time(src, session) -> None:
    """The runtime's rings got the session's own samples stamped at origin + session time, so a
    prediction's ``t_s`` names the session moment its window ends at (the stamps as pushed:
    the ring's own timeline is the device clock fitted onto them, smooth within a few ms)."""
    rig = src.rigs.current
    for p, ring in rig.buffer.imu.items():
        snap = ring.latest(10)
        t_sess = (snap.arrival_ns - rig.origin_ns) / 1e9
        np.testing.assert_allclose((snap.t_ns - rig.origin_ns) / 1e9, t_sess, atol=0.02)
        rec = session.imu[p]
        idx = np.searchsorted(rec.t, t_sess - 1e-6)
        np.testing.assert_allclose(rec.t[idx], t_sess, atol=1e-6)
        np.testing.assert_allclose(rec.values[idx, :3], snap.values, rtol=1e-6, err_msg=p)


def test_predictions_stay_on_session_time_through_pause_seek_and_speed(assets, monitor, qtbot):
    _, session_dir = assets
    session = open_session(session_dir)
    src, win = monitor
    timeline = win.timeline
    arr = Arrivals(src, win, qtbot)
    src.start()
    arr.until(lambda: arr.rows and arr.rows[-1]["label"] is not None and arr.rows[-1]["t_s"] >= 4)
    _assert_on_session_time(arr.rows, "from the start")
    # the predicted lane ends at the newest prediction, next to "now" and on the truth lane's axis
    labelled = [r for r in arr.rows if r["label"] is not None]
    assert timeline.entries[-1].end == pytest.approx(labelled[-1]["t_s"])
    assert timeline.truth == session.labels

    # pause 1 s: the clock stops with the replay: no windows, and no hole after the resume
    src.pause()
    qtbot.wait(200)  # a window in flight may still land
    arr.poll()
    held, n = src.status().position_s, len(arr.rows)
    _assert_model_rings_on_session_time(src, session)
    arr.play(1.0)
    assert src.status().position_s == held and len(arr.rows) == n
    assert win.timeline.now_line.value() == pytest.approx(held)
    wall = time.time()
    src.resume()
    arr.until(lambda: len(arr.since(wall)) >= 4)
    after_pause = arr.since(wall)
    _assert_on_session_time(after_pause, "after a pause")
    assert all(r["label"] is not None for r in after_pause)  # the windows ran on across it

    # seek back: the lane ahead of "now" goes at once, windows start over on fresh rings
    back_from = src.status().position_s
    assert back_from > 6.0
    seek_t = 2.0
    src.seek(seek_t)
    wall = time.time()  # from here on only the new rings' run emits (see RigSwitch)
    win.refresh()
    assert timeline.now_line.value() == pytest.approx(seek_t, abs=0.1)
    assert all(e.end <= seek_t + 0.1 for e in timeline.entries)
    arr.until(
        lambda: any(r["label"] is not None and r["t_s"] >= seek_t + 1 for r in arr.since(wall))
    )
    arr.play(1.0)
    after_back = arr.since(wall)
    _assert_on_session_time(after_back, "after seeking back")
    assert min(r["t_s"] for r in after_back) >= seek_t
    for r in after_back:  # no window mixes data from before and after the seek
        if r["t_ref_s"] is None or r["t_ref_s"] - WINDOW_S < seek_t - 0.1:
            assert r["label"] is None, r
    # the lane restarted where the data did: nothing between the seek and a full window
    assert all(
        e.end <= seek_t or e.start >= seek_t + WINDOW_S - 2 * STRIDE_S for e in timeline.entries
    )
    assert timeline.entries[-1].end <= src.status().position_s + 0.05

    # seek forward and play at 2×: the same, on the new stretch
    seek_t = 12.0
    src.seek(seek_t)
    wall = time.time()
    src.set_speed(2.0)
    arr.until(
        lambda: any(r["label"] is not None and r["t_s"] >= seek_t + 3 for r in arr.since(wall))
    )
    after_fwd = arr.since(wall)
    _assert_on_session_time(after_fwd, "after seeking forward at 2×")
    for r in after_fwd:
        if r["t_ref_s"] is None or r["t_ref_s"] - WINDOW_S < seek_t - 0.1:
            assert r["label"] is None, r
    assert not [e for e in timeline.entries if back_from < e.end < seek_t + WINDOW_S - 1.0]
    # slowing down keeps the windows going: the same rings, a new run at the new pace
    src.set_speed(1.0)
    wall = time.time()
    arr.until(lambda: len(arr.since(wall)) >= 3)
    after_speed = arr.since(wall)
    _assert_on_session_time(after_speed, "after slowing to 1×")
    assert all(r["label"] is not None for r in after_speed)
    src.pause()
    qtbot.wait(200)
    _assert_model_rings_on_session_time(src, session)
    assert src.rigs.renewals == 3  # the start, and one fresh set of rings per seek
    latency = src.status().latency_p50_ms
    assert latency is not None and latency < 2000  # wall milliseconds, at any speed


def test_start_stop_button_stops_and_restarts_the_pipeline(monitor, qtbot):
    src, win = monitor
    button = win.controls.start_button
    src.start()
    win.refresh()
    assert button.isChecked() and button.text() == "Stop"
    qtbot.waitUntil(lambda: win.latest is not None and win.latest.label is not None, timeout=30_000)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert button.text() == "Start" and not src.status().running
    qtbot.wait(700)  # a window already in inference may still arrive
    seen, position = win.predictions_seen, src.status().position_s
    qtbot.wait(1500)  # three strides: nothing new, the replay holds its place
    assert win.predictions_seen == seen
    assert src.status().position_s == position
    win.refresh()
    for stream in src.buffer.config.stream_names():
        assert win.health.is_down(stream)
        assert win.health.cell(stream, "link") == "DOWN (stopped)"
        assert win.health.tooltip(stream).startswith("stopped")
    assert "stopped" in win.status_label.text()
    assert not button.isChecked()

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert button.text() == "Stop" and src.status().running
    qtbot.waitUntil(lambda: win.predictions_seen >= seen + 3, timeout=30_000)
    qtbot.waitUntil(lambda: win.latest.label is not None, timeout=30_000)
    # it goes on where it stopped, on the same session time axis
    assert position <= win.latest.t_s <= src.status().position_s
    win.refresh()
    for stream in src.buffer.config.stream_names():
        assert not win.health.is_down(stream) and win.health.cell(stream, "link") == "up"


def test_speed_max_is_one_constant_for_the_command_line_and_the_menu(assets, monkeypatch, qtbot):
    art, session = assets
    shown = []

    def show(source, **_kwargs) -> int:  # instead of the blocking window: keep the source
        shown.append(source)
        return 0

    monkeypatch.setattr(gui.launch, "run_gui", show)
    assert gui.launch.launch(art, _config(), None, session, monitor_speed("max")) == 0
    src = shown[-1]
    try:
        assert src.replay.speed == MAX_SPEED == 8.0
        assert src.status().speed is None
        controls = Controls(src)  # the window's control bar, as the window refreshes it
        qtbot.addWidget(controls)
        controls.update_status(src.status())
        combo = controls.speed_combo
        assert combo.currentText() == speed_text(None) == "max (8×)"
        assert [combo.itemData(i) for i in range(combo.count())] == list(SPEEDS)
        combo.setCurrentIndex(combo.findData(2.0))
        assert src.replay.speed == 2.0
        combo.setCurrentIndex(combo.findData(None))  # the menu's max: the same constant
        assert src.replay.speed == MAX_SPEED and src.status().speed is None
    finally:
        src.close()
    # no --speed: the monitor plays the session (the bundled demo too) at 1×
    gui.launch.launch(art, _config(), None, session, monitor_speed(None))
    try:
        assert shown[-1].replay.speed == 1.0 and shown[-1].status().speed == 1.0
    finally:
        shown[-1].close()
    # a speed the menu lacks is added to it, in order
    gui.launch.launch(art, _config(), None, session, monitor_speed("3"))
    src = shown[-1]
    try:
        controls = Controls(src)  # the window's control bar, as the window refreshes it
        qtbot.addWidget(controls)
        controls.update_status(src.status())
        combo = controls.speed_combo
        assert combo.currentText() == "3×" and src.replay.speed == 3.0
        assert [combo.itemData(i) for i in range(combo.count())] == [1.0, 2.0, 3.0, 4.0, None]
    finally:
        src.close()


def test_windows_skipped_at_high_speed_are_counted_in_the_status_bar(assets, qtbot):
    """Issue 16 item 10: when inference cannot keep up (8× with windows every 0.1 s of session
    time: one every 12.5 wall ms), the holes in the prediction lane are explained by the
    skipped count in the status bar."""
    art, session = assets
    config = RuntimeConfig(stride_s=0.1, topk=5, backend="eager")
    src = replay_pipeline_source(art, session, 8.0, config)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    try:
        src.start()
        qtbot.waitUntil(lambda: win.predictions_seen >= 5 and src.status().skipped > 0,
                        timeout=60_000)  # fmt: skip
        src.stop()
        qtbot.wait(500)  # the run drains; its last count reaches the source
        win.refresh()
        shown = re.search(r"skipped (\d+) windows", win.status_label.text())
        assert shown is not None, win.status_label.text()
        assert int(shown.group(1)) == src.status().skipped > 0
        # every window is either shown or counted: the indices seen plus the skipped ones
        # cover the windows cut so far
        assert win.latest is not None
        assert win.predictions_seen + src.status().skipped >= win.latest.index - 2
    finally:
        src.close()
