"""The monitor window, offscreen: widgets follow a replayed session, predictions, health, sensor
failure and reconnect on a real pty, replay controls, recording, and the screenshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import Qt

from drivers.config import BackoffConfig, SerialImuConfig
from drivers.protocols.text_lines import format_csv_line
from drivers.serial_imu import SerialImuDriver
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.sessions import open_session
from evimae_stream.synthetic import generate_session
from gui.app import WINDOW_SIZE, run_gui, save_screenshot
from gui.controls import SLIDER_STEPS, speed_text
from gui.demo import replay_source, synthetic_source
from gui.imu_plots import SPAN_S
from gui.local_source import LocalSource
from gui.main_window import MonitorWindow
from gui.protocol import MAX_SPEED
from tests.helpers.pty_device import PtyDevice
from tests.helpers.runtime import runtime_prediction

pytestmark = pytest.mark.gui

_NS = 1_000_000_000


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory):
    """A 15 s synthetic session (4 IMUs with gyro at 50 Hz, 160×120 video, labels)."""
    out = tmp_path_factory.mktemp("gui") / "session"
    generate_session(out, actions=2, minutes=0.25, size=(160, 120), seed=1)
    return out


@pytest.fixture
def replay(session_dir, qtbot):
    """A replay at 8× with its window (the timer running); closed after the test."""
    src = replay_source(session_dir, speed=8.0)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    src.start()
    yield src, win
    src.close()


def _contiguous_slice(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Start index where ``needle`` occurs as a contiguous run in ``haystack`` (-1: nowhere)."""
    n = len(needle)
    for start in np.flatnonzero(haystack == needle[0]):
        if start + n <= len(haystack) and np.array_equal(haystack[start : start + n], needle):
            return int(start)
    return -1


def test_plots_and_video_follow_the_replayed_session(replay, session_dir, qtbot):
    src, win = replay
    qtbot.waitUntil(lambda: src.replay.source.position_s >= 12.0, timeout=10_000)
    src.pause()
    qtbot.wait(100)  # a read in flight when pausing may still land
    win.refresh()
    session = open_session(session_dir)
    buf = src.buffer
    t_end = max(r.newest_ns for r in buf.imu.values())
    assert win.imu.t_end_ns == t_end
    # the paced replay stamps at the session's own rate (its clock carries the speed), so 10 s
    # of recorded motion is 10 s on the rings' timeline at 8× too
    assert src.status().time_scale == 1.0
    for p, ring in buf.imu.items():
        snap = ring.snapshot(t_end - round(SPAN_S * _NS), t_end)
        for axis, curve in enumerate(win.imu.curves[p]):
            x, y = curve.getData()
            np.testing.assert_allclose(x, (snap.t_ns - t_end) / _NS, rtol=1e-12)
            np.testing.assert_array_equal(y, snap.values[:, axis])
        # what is plotted is the session's own recording: the last ~10 s before the position
        x, y = win.imu.curves[p][0].getData()
        rec = session.imu[p]
        start = _contiguous_slice(rec.values[:, 0], y)
        assert start >= 0, p
        last = start + len(y) - 1
        assert rec.t[last] <= src.replay.source.position_s + 1e-9
        assert rec.t[last] - rec.t[start] == pytest.approx(SPAN_S, abs=0.2)
        assert x[0] >= -SPAN_S and x[-1] <= 0.0
    t_frame, frame = buf.camera.latest()
    assert win.video.frame_t_ns == t_frame
    assert (win.video.image.width(), win.video.image.height()) == (frame.shape[1], frame.shape[0])
    rect = win.video.image_rect()  # scaled keeping the aspect ratio
    assert rect.width() / rect.height() == pytest.approx(160 / 120, rel=0.02)
    assert win.video.image.pixelColor(80, 60).getRgb()[:3] == tuple(int(v) for v in frame[60, 80])


def test_layout_gives_the_imu_plots_room_and_fills_the_video_area(session_dir, qtbot):
    """At the default window size: the four IMU plots share most of the right column's height,
    the health table is exactly as tall as its rows, and the camera image fills its view."""
    src = replay_source(session_dir, speed=4.0)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.resize(*WINDOW_SIZE)
    win.show()
    src.start()
    try:
        qtbot.waitUntil(lambda: win.video.image is not None, timeout=5000)
        qtbot.wait(100)  # the layout follows the camera's aspect ratio
        win.refresh()
        height = win.centralWidget().height()
        plots = [win.imu.plots[p].height() for p in win.imu.placements]
        assert min(plots) >= 0.22 * height, (plots, height)
        h = win.health
        assert h.rowCount() == len(src.buffer.config.stream_names()) == 5
        rows = sum(h.rowHeight(r) for r in range(h.rowCount()))
        assert abs(h.viewport().height() - rows) <= 2  # every row shown, no empty space
        assert h.height() < min(plots)
        assert win.timeline.height() < 0.2 * height
        assert win.video.aspect == pytest.approx(120 / 160)
        view, image = win.video.size(), win.video.image_rect()
        assert image.width() >= 0.95 * view.width() and image.height() >= 0.95 * view.height()
        assert view.width() >= 0.3 * WINDOW_SIZE[0]
    finally:
        src.close()


def test_predictions_fill_the_panel_timeline_and_status(replay, session_dir, qtbot):
    src, win = replay
    src.pause()
    labels = ["jogging"] * 3 + ["chopping"] * 2
    topk = {
        "jogging": [("jogging", 0.71), ("walking", 0.12), ("idle", 0.08), ("waving", 0.05),
                    ("chopping", 0.02)],
        "chopping": [("chopping", 0.64), ("stirring", 0.3), ("idle", 0.06)],
    }  # fmt: skip
    lats = [10.0, 20.0, 30.0, 40.0, 50.0]
    for i, (label, lat) in enumerate(zip(labels, lats, strict=True)):
        src.emit(runtime_prediction(0.5 * (i + 1), label, topk[label], latency_ms=lat))
    win.refresh()
    assert win.prediction.action.text() == "chopping"
    assert win.prediction.score.text() == "score 0.64"
    assert win.prediction.topk_shown() == [("chopping", 0.64), ("stirring", 0.3), ("idle", 0.06)]
    assert "latency 50 ms" in win.prediction.details.text()
    spans = [(e.start, e.end, e.label) for e in win.timeline.entries]
    assert spans == [(0.0, 1.5, "jogging"), (1.5, 2.5, "chopping")]
    x0, x1 = win.timeline.pred_item.opts["x0"], win.timeline.pred_item.opts["x1"]
    np.testing.assert_allclose(np.c_[x0, x1], [[0.0, 1.5], [1.5, 2.5]])
    # different classes get different colours, and the legend names them
    assert win.timeline.colour("jogging") != win.timeline.colour("chopping")
    assert "jogging" in win.timeline.legend.text() and "chopping" in win.timeline.legend.text()
    # ground-truth lane: the session's labels
    truth = open_session(session_dir).labels
    assert win.timeline.truth == truth
    np.testing.assert_allclose(win.timeline.truth_item.opts["x0"], [s.start_s for s in truth])
    status = win.status_label.text()
    assert "latency p50 30 ms · p95 48 ms" in status and "paused" in status
    # a window without a prediction: the reason is shown, the timeline leaves a gap
    src.emit(runtime_prediction(3.0, None, [], latency_ms=None))
    src.emit(runtime_prediction(3.5, "jogging", topk["jogging"]))
    win.refresh()
    assert win.prediction.action.text() == "jogging"
    assert [(e.start, e.end, e.label) for e in win.timeline.entries][-1] == (3.0, 3.5, "jogging")
    # seeking back drops the entries after the new position
    src.emit(runtime_prediction(1.0, "idle", [("idle", 0.9)]))
    win.refresh()
    spans = [(e.start, e.end, e.label) for e in win.timeline.entries]
    assert spans == [(0.0, 0.5, "jogging"), (0.5, 1.0, "idle")]


def test_health_table_shows_rate_drops_and_clock(qtbot):
    clock = VirtualClock(100 * _NS)
    buf = StreamBuffer(
        BufferConfig(
            placements=("left_arm", "right_arm"), camera=True, camera_fps=30.0, imu_rate_hz=50.0
        ),
        clock=clock,
    )
    t0 = clock()
    for i in range(400):  # 8 s at 50 Hz; right_arm loses samples 300..309 (10 drops)
        t = t0 + i * 20_000_000
        buf.imu["left_arm"].push(t, np.zeros(3))
        if not 300 <= i < 310:
            buf.imu["right_arm"].push(t, np.zeros(3))
    for i in range(240):  # 8 s of a 30 fps camera (a new array per frame, as drivers hand over)
        buf.camera.push_frame(t0 + round(i * _NS / 30), np.zeros((2, 2, 3), np.uint8))
    clock.set_ns(t0 + 399 * 20_000_000 + 10_000_000)  # half a period after the last sample
    src = LocalSource(buf)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.refresh()
    h = win.health
    # over the last 5 s (samples 150..399): left 250 samples (50 Hz), right 10 fewer (48 Hz)
    assert h.cell("left_arm", "rate Hz") == "50.0"
    assert h.cell("right_arm", "rate Hz") == "48.0"
    assert h.cell("left_arm", "drops") == "0"
    assert h.cell("right_arm", "drops") == "10"
    assert h.cell("right_arm", "samples") == "390"
    assert h.cell("left_arm", "link") == "up" and not h.is_down("left_arm")
    assert h.cell("left_arm", "age s") == "0.01"
    # the camera ring holds 128 frames (4.3 s): its rate is over those, not 128 / 5 s = 25.6
    assert buf.camera.capacity == 128 < 5 * 30
    assert h.cell("camera", "rate Hz") == "30.0" and h.cell("camera", "drops") == "0"
    buf.imu["right_arm"].mark_down("bluetooth link lost")
    win.refresh()
    assert h.is_down("right_arm") and h.cell("right_arm", "link").startswith("DOWN")
    assert h.tooltip("right_arm") == "bluetooth link lost"
    assert not h.is_down("left_arm")
    assert "DOWN" in win.imu.plots["right_arm"].getPlotItem().titleLabel.text


def _csv_bytes(i: int) -> bytes:
    return format_csv_line(np.array([np.sin(i / 7), np.cos(i / 5), 1.0]), t_dev=i * 0.01).encode()


def test_sensor_failure_and_reconnect_on_a_real_pty(tmp_path, qtbot):
    dev = PtyDevice(tmp_path / "ttyIMU0", _csv_bytes, rate_hz=100)
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False, imu_rate_hz=100.0))
    fast = BackoffConfig(initial_s=0.05, max_s=0.2)
    drv = SerialImuDriver(
        SerialImuConfig(port=str(dev.link), backoff=fast, rate_hz=100.0), buf.imu_sink("left_arm")
    )
    src = LocalSource(buf, {"left_arm": drv})
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    try:
        src.start()
        qtbot.waitUntil(lambda: buf.imu["left_arm"].newest_ns is not None, timeout=5000)
        qtbot.waitUntil(lambda: "left_arm" in win.health.rows, timeout=2000)
        assert not win.health.is_down("left_arm")
        dev.unplug()
        qtbot.waitUntil(lambda: win.health.is_down("left_arm"), timeout=5000)
        tip = win.health.tooltip("left_arm")
        reason = buf.imu["left_arm"].down_reason
        assert reason and reason in tip
        ticks = win._ticks
        qtbot.wait(300)  # the window keeps refreshing while the driver retries
        assert win._ticks > ticks
        dev.replug()
        qtbot.waitUntil(lambda: not win.health.is_down("left_arm"), timeout=5000)
        qtbot.waitUntil(lambda: win.health.cell("left_arm", "reconnects") == "1", timeout=2000)
    finally:
        src.close()
        dev.close()


#: the test device's clock: host monotonic time minus this (it "booted" this long after the host)
DEVICE_CLOCK_BEHIND_S = 500.0


def _device_clock_csv(i: int) -> bytes:
    """One CSV sample stamped with the device's own clock (ms), read at the moment it is sent."""
    t_dev = time.monotonic() - DEVICE_CLOCK_BEHIND_S
    return format_csv_line(np.array([np.sin(i / 7), np.cos(i / 5), 1.0]), t_dev=t_dev).encode()


def test_health_table_shows_clock_offset_and_bad_frames_of_a_real_serial_imu(tmp_path, qtbot):
    """A CSV IMU on a real pty with its own clock and some garbage lines: the table shows the
    fitted device→host offset and counts every rejected line."""
    dev = PtyDevice(tmp_path / "ttyIMU1", _device_clock_csv, rate_hz=100)
    buf = StreamBuffer(BufferConfig(placements=("right_leg",), camera=False, imu_rate_hz=100.0))
    drv = SerialImuDriver(
        SerialImuConfig(port=str(dev.link), rate_hz=100.0), buf.imu_sink("right_leg")
    )
    src = LocalSource(buf, {"right_leg": drv})
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    h = win.health
    try:
        src.start()
        qtbot.waitUntil(lambda: len(buf.imu["right_leg"]) >= 100, timeout=5000)
        win.refresh()
        # host − device time: the 500 s the device clock is behind, plus a transfer delay of
        # well under 50 ms (the fit follows the lower envelope: the fastest arrivals), minus up
        # to 0.5 ms of rounding the device time to whole ms and a little fitted drift
        # in seconds to the millisecond, the unit of every time in the table
        assert 499.998 <= float(h.cell("right_leg", "clock offset s")) < 500.050
        assert 499.998 <= buf.health()["right_leg"].clock_offset_s < 500.050
        before = int(h.cell("right_leg", "bad frames"))  # a line cut when the port opened
        assert before == drv.stats.bad_frames
        garbage = [b"\xde\xad\xbe\xef\xff\r\n", b"hello world\r\n", b"0.1,zz,0.3,123\r\n"]
        for line in garbage:
            dev.inject(line)
        qtbot.waitUntil(
            lambda: h.cell("right_leg", "bad frames") == str(before + len(garbage)), timeout=3000
        )
        assert h.cell("right_leg", "link") == "up"  # garbage does not take the stream down
        n = int(h.cell("right_leg", "samples"))
        qtbot.waitUntil(lambda: int(h.cell("right_leg", "samples")) > n + 20, timeout=3000)
        assert 499.998 <= float(h.cell("right_leg", "clock offset s")) < 500.050
    finally:
        src.close()
        dev.close()


def test_replay_controls_act_on_the_replay_driver(replay, qtbot):
    src, win = replay
    c = win.controls
    rp = src.replay
    qtbot.waitUntil(lambda: rp.source.position_s > 1.0, timeout=5000)
    assert c.pause_button.isVisible() and c.seek_slider.isVisible()
    win.refresh()
    # the replay's own speed is shown: 8× is what "max" means in the monitor
    assert c.speed_combo.currentText() == speed_text(None) == "max (8×)"
    qtbot.mouseClick(c.pause_button, Qt.MouseButton.LeftButton)
    assert rp.paused
    qtbot.wait(100)  # a read already in flight when pausing still lands
    held = rp.source.position_s
    qtbot.wait(300)
    assert rp.source.position_s == held
    assert "paused" in win.status_label.text()
    c.seek_slider.setValue(SLIDER_STEPS // 2)  # what a drag release or a key press does
    duration = rp.source.duration_s
    assert rp.source.position_s == pytest.approx(duration / 2, abs=duration / SLIDER_STEPS)
    qtbot.mouseClick(c.pause_button, Qt.MouseButton.LeftButton)
    assert not rp.paused
    qtbot.waitUntil(lambda: rp.source.position_s > duration / 2 + 0.5, timeout=5000)
    c.speed_combo.setCurrentIndex(c.speed_combo.findText("4×"))
    assert rp.speed == 4.0 and src.status().speed == 4.0
    c.speed_combo.setCurrentIndex(c.speed_combo.findData(None))
    assert rp.speed == MAX_SPEED and src.status().speed is None
    # at max the window still refreshes (it only paints ring snapshots)
    ticks = win._ticks
    qtbot.waitUntil(lambda: win._ticks >= ticks + 5, timeout=5000)
    # the slider follows the position (without seeking); paused, so the position holds still
    # between the refresh and the check (at 8× it moves half a slider step per millisecond)
    src.pause()
    qtbot.wait(100)
    win.refresh()
    want = round(rp.source.position_s / duration * SLIDER_STEPS)
    assert abs(c.seek_slider.value() - want) <= 2


def test_record_button_writes_a_session(replay, tmp_path, qtbot):
    src, win = replay
    c = win.controls
    c.record_folder = tmp_path / "rec"
    qtbot.waitUntil(lambda: src.buffer.camera.latest() is not None, timeout=5000)
    qtbot.mouseClick(c.record_button, Qt.MouseButton.LeftButton)
    assert src.status().recording is not None
    session_path = src.status().recording
    qtbot.wait(600)
    qtbot.mouseClick(c.record_button, Qt.MouseButton.LeftButton)
    assert src.status().recording is None

    def complete() -> bool:  # the writer is closed off the GUI thread
        meta = json.loads((Path(session_path) / "session.json").read_text())
        return meta["complete"] is True

    qtbot.waitUntil(complete, timeout=5000)
    with open_session(session_path) as s:
        assert set(s.imu) == set(src.buffer.imu)
        assert all(len(st.t) > 20 for st in s.imu.values())
        assert s.has_video and s.video.num_frames > 5


def test_screenshot_of_a_live_synthetic_rig_has_real_content(tmp_path, qtbot):
    src = synthetic_source(seed=3)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    src.start()
    try:
        qtbot.waitUntil(lambda: win.video.image is not None, timeout=8000)
        qtbot.waitUntil(
            lambda: all(r.newest_ns is not None for r in src.buffer.imu.values()), timeout=5000
        )
        qtbot.wait(300)
        src.emit(
            runtime_prediction(src.timeline_now_s(), "waving", [("waving", 0.8), ("idle", 0.2)])
        )
        path = save_screenshot(win, tmp_path / "shot.png")
    finally:
        src.close()
    img = cv2.imread(str(path))
    assert img is not None
    assert img.shape[0] >= 800 and img.shape[1] >= 1200
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 200
    r = win.video.image_rect()
    top_left = win.video.mapTo(win, r.topLeft())
    crop = img[top_left.y() : top_left.y() + r.height(), top_left.x() : top_left.x() + r.width()]
    assert crop.size and crop.std() > 10
    assert len(np.unique(crop.reshape(-1, 3), axis=0)) > 50


def test_run_gui_saves_a_screenshot_and_returns(session_dir, tmp_path, qtbot):
    src = replay_source(session_dir, speed=4.0)
    out = tmp_path / "run.png"
    assert run_gui(src, screenshot=out, duration=1.0) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (WINDOW_SIZE[1], WINDOW_SIZE[0])
    assert not src.replay.running  # closed on return


@pytest.mark.slow
def test_python_m_gui_screenshot_subprocess(tmp_path):
    out = tmp_path / "cli.png"
    proc = subprocess.run(
        [sys.executable, "-m", "gui", "--screenshot", str(out), "--duration", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(out))
    assert img is not None and len(np.unique(img.reshape(-1, 3), axis=0)) > 200


def test_gui_thread_is_not_blocked_by_a_slow_pipeline(qtbot):
    """A pipeline worker that sleeps (like inference) never stalls the window's refreshes."""

    def slow_worker(stop):
        while not stop.is_set():
            time.sleep(0.4)  # a "forward pass"

    src = LocalSource(StreamBuffer(BufferConfig(camera=False)), worker=slow_worker)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    src.start()
    try:
        ticks = win._ticks
        qtbot.waitUntil(lambda: win._ticks >= ticks + 10, timeout=5000)
    finally:
        src.close()


@pytest.mark.slow
def test_runtime_pipeline_predictions_reach_the_window(tmp_path, qtbot):
    """The real runtime (gates, scheduler, eager backend) on a tiny random model, fed by the
    live synthetic rig through the tee sinks: predictions arrive, the display rings get
    full-size frames at once."""
    from gui.demo import synthetic_pipeline_source
    from tests.helpers.runtime import SYNTH_CLASSES, make_artifact

    art = make_artifact(tmp_path / "model")
    src = synthetic_pipeline_source(art, seed=7)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    src.start()
    try:
        # the first windows have too little data: a reason, no label; then labels come
        qtbot.waitUntil(
            lambda: win.latest is not None and win.latest.label is not None, timeout=40_000
        )
        win.controls.record_folder = tmp_path / "rec"
        qtbot.mouseClick(win.controls.record_button, Qt.MouseButton.LeftButton)
        session_path = Path(src.status().recording)
        qtbot.wait(1500)
        qtbot.mouseClick(win.controls.record_button, Qt.MouseButton.LeftButton)
    finally:
        src.close()  # waits for the recording to be closed
    pred = win.latest
    assert pred is not None and pred.label in SYNTH_CLASSES
    assert [name for name, _ in win.prediction.topk_shown()] == [lab for lab, _ in pred.topk]
    assert win.timeline.entries and win.timeline.entries[-1].label == pred.label
    assert pred.t_s > 0 and pred.latency_ms is not None
    status = src.status()
    assert status.backend.startswith("eager") and status.latency_p50_ms is not None
    # the window's camera ring holds the camera's own frames (the model's ring gets 112×112)
    _, frame = src.buffer.camera.latest()
    assert frame.shape == (240, 320, 3)
    # recorded through the gates: what the sensors sent (gyro, device time, full frames)
    with open_session(session_path) as s:
        assert set(s.imu) == set(src.buffer.imu)
        for stream in s.imu.values():
            assert stream.channels == ("ax", "ay", "az", "gx", "gy", "gz")
            assert stream.t_dev is not None and len(stream.t) > 10
            assert stream.t[0] >= 0.0
        assert s.has_video and (s.video.width, s.video.height) == (320, 240)
