"""One rate everywhere (issue 16 item 4): samples per second of a stream's own time, the same in
the GUI's health table at any replay speed, in the JSONL and in the run summary of a live run on
real pseudo-terminals; clock offsets only where they mean something."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from drivers.protocols.text_lines import format_csv_line
from drivers.protocols.witmotion import encode_serial_sample
from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.health import RATE_WINDOW_S, rate_hz
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.types import CAMERA
from gui.demo import replay_source
from gui.main_window import MonitorWindow
from gui.runtime_source import replay_pipeline_source
from tests.helpers.paths import REPO
from tests.helpers.pty_device import PtyDevice
from tests.helpers.runtime import make_artifact, make_session

NS = 1_000_000_000
RATE = 50.0


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny random model and a 20 s synthetic session (4 IMUs at 50 Hz, 30 fps video)."""
    root = tmp_path_factory.mktemp("rates")
    return make_artifact(root / "model"), make_session(root / "session", seconds=20.0)


def test_rate_is_samples_per_second_of_stream_time_over_the_named_window():
    # 251 samples 20 ms apart span 5 s: 250 periods of 20 ms, 50 Hz, whatever "now" is
    assert rate_hz(251, 0, 5 * NS) == pytest.approx(50.0)
    assert rate_hz(1, 0, 0) == 0.0 and rate_hz(0, None, None) == 0.0
    clock = VirtualClock(0)
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False), clock=clock)
    ring = buf.imu["left_arm"]
    for i in range(600):  # 12 s at 50 Hz, read 0.4 s after the newest (a paced replay's lag)
        ring.push(NS + i * 20_000_000, np.zeros(3, np.float32))
    clock.set_ns(NS + 599 * 20_000_000 + 400_000_000)
    counters = buf.health()["left_arm"]
    assert counters.rate_hz == pytest.approx(50.0)  # not 50 × (5 − 0.4) / 5 = 46
    assert RATE_WINDOW_S == 5.0
    assert counters.clock_offset_s is None  # no device clock: no offset


def _wait_session_time(src, qtbot, seconds: float) -> None:
    qtbot.waitUntil(lambda: src.status().position_s >= seconds, timeout=30_000)


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("speed", [4.0, 8.0])
@pytest.mark.parametrize("kind", ["replay", "pipeline"])
def test_gui_replay_at_speed_shows_the_session_rates(assets, qtbot, speed, kind):
    """A 50 Hz session replayed at 4× or 8× (the monitor's replay, and ``--gui --replay``
    through the runtime) shows 50 ± 1 Hz per IMU and the camera's 30 fps, and no clock offset
    (a file's device times against the replay's timeline mean nothing)."""
    model, session = assets
    if kind == "replay":
        src = replay_source(session, speed=speed)
    else:
        config = RuntimeConfig(stride_s=0.5, topk=3, backend="eager")
        src = replay_pipeline_source(model, session, speed, config)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    win.show()
    src.start()
    try:
        _wait_session_time(src, qtbot, 9.0)
        win.refresh()
        h = win.health
        rates = {name: float(h.cell(name, "rate Hz")) for name in h.rows}
        offsets = {name: h.cell(name, "clock offset s") for name in h.rows}
    finally:
        src.close()
    imus = {n: r for n, r in rates.items() if n != CAMERA}
    assert len(imus) == 4 and all(abs(r - RATE) <= 1.0 for r in imus.values()), rates
    assert abs(rates[CAMERA] - 30.0) <= 1.0, rates
    assert set(offsets.values()) == {"—"}, offsets


@pytest.mark.slow
def test_summary_of_a_50hz_pty_run_says_50hz(assets, tmp_path):
    """Two 50 Hz IMUs on real pseudo-terminals (WitMotion without device time: the index clock;
    csv with device time) into the CLI: the run summary says 50 ± 1 Hz for each, as the last
    windows' health in the JSONL does."""
    model, _ = assets

    def acc(i: int) -> tuple[float, float, float]:
        return (0.3 * np.sin(i / 8), 0.2 * np.cos(i / 5), 1.0)

    wit = PtyDevice(tmp_path / "ttyWIT", lambda i: encode_serial_sample(acc(i)), RATE)
    csv = PtyDevice(
        tmp_path / "ttyCSV", lambda i: format_csv_line(acc(i), t_dev=i / RATE).encode(), RATE
    )
    out = tmp_path / "live.jsonl"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "evimae_stream.cli", "--imu-ports",
             f"left_arm=serial:{wit.link}?protocol=witmotion&rate=50",
             f"right_leg=serial:{csv.link}?protocol=csv&rate=50",
             "--no-camera", "--model", str(model), "--duration", "8", "--jsonl", str(out),
             "--backend", "eager"],
            capture_output=True, text=True, timeout=180, cwd=REPO,
        )  # fmt: skip
    finally:
        wit.close()
        csv.close()
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    last = [e["health"] for e in events if e["type"] == "prediction"][-3:]
    for name in ("left_arm", "right_leg"):
        line = next(x for x in proc.stderr.splitlines() if x.strip().startswith(f"{name}:"))
        assert abs(float(line.split(" Hz")[0].split(", ")[-1]) - RATE) <= 1.0, line
        rates = [h[name]["rate_hz"] for h in last]
        assert len(rates) == 3 and all(abs(r - RATE) <= 1.0 for r in rates), rates
