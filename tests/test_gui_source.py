"""The monitor's adapter without a window: predictions, health merging, recording, controls."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.errors import InputError
from evimae_stream.health import DriverStats, StreamHealth
from evimae_stream.runtime.events import Prediction
from evimae_stream.sessions import open_session
from evimae_stream.streams import StreamSpec
from gui.local_source import LocalSource, display_buffer
from gui.protocol import MonitorSource
from gui.recording import RingRecorder
from tests.helpers.runtime import runtime_prediction

_NS = 1_000_000_000


def test_runtime_predictions_reach_the_window_as_they_are():
    # the monitor reads the runtime's own objects: tick time on the run's timeline, no JSON
    pred = Prediction(
        index=3, tick_ns=11_500_000_000, origin_ns=10_000_000_000, t_ref_ns=11_480_000_000,
        label="waving", score=0.7, topk=[("waving", 0.7), ("idle", 0.2)], mode="imu_only",
        modalities=("imu",), latency_ms=21.0,
    )  # fmt: skip
    src = LocalSource(StreamBuffer(BufferConfig(camera=False)))
    src.emit(pred)
    (p,) = src.pull_predictions()
    assert p is pred
    assert p.t_s == pytest.approx(1.5) and p.label == "waving"
    assert p.topk == [("waving", 0.7), ("idle", 0.2)] and p.latency_ms == 21.0
    none = runtime_prediction(3.0, None, [], latency_ms=None)
    assert none.t_s == pytest.approx(3.0) and none.reason == "all streams missing"


def test_latency_percentiles_and_pull_drains():
    src = LocalSource(StreamBuffer(BufferConfig(camera=False)), backend="eager", precision="fp32")
    assert isinstance(src, MonitorSource)
    for i, lat in enumerate([10.0, 20.0, 30.0, 40.0, 50.0]):
        src.emit(runtime_prediction(0.5 * (i + 1), "a", [("a", 0.9)], latency_ms=lat))
    st = src.status()
    assert st.latency_p50_ms == 30.0
    assert st.latency_p95_ms == pytest.approx(48.0)  # linear interpolation between 40 and 50
    assert st.backend == "eager" and st.precision == "fp32" and not st.replay
    assert len(src.pull_predictions()) == 5
    assert src.pull_predictions() == []
    src.emit(runtime_prediction(3.0, None, [], latency_ms=None))  # no latency: not counted
    assert [p.label for p in src.pull_predictions()] == [None]
    assert src.status().latency_p50_ms == 30.0
    with pytest.raises(InputError, match="live"):
        src.pause()


def _stats(state="up", bad=0, reconnects=0, err=None) -> DriverStats:
    return DriverStats("x", state, 10, 100, bad, 1, 0, reconnects, err)


def test_stream_health_down_reasons():
    buf = StreamBuffer(BufferConfig(placements=("left_arm",), camera=False))
    ring = buf.imu["left_arm"]
    ring.push(time.monotonic_ns(), np.zeros(3))  # fresh: a stale stream is not up
    up = StreamHealth(buf.health()["left_arm"], _stats(bad=2, reconnects=3))
    assert up.up and up.reason is None and up.bad_frames == 3 and up.reconnects == 3
    ring.mark_down("SerialException: device reports readiness to read but returned no data")
    down = StreamHealth(buf.health()["left_arm"], _stats("down", err="SerialException: gone"))
    assert (
        not down.up
        and "readiness to read" in down.reason
        and "SerialException: gone" in down.reason
    )
    # stopped by the user: not streaming, and it says so
    ring.mark_up()
    stopped = StreamHealth(buf.health()["left_arm"], _stats("stopped"))
    assert not stopped.up and stopped.reason.startswith("stopped")
    # the ring is up but the driver says down: down, with the driver's error
    ring.mark_up()
    d2 = StreamHealth(buf.health()["left_arm"], _stats("down", err="OSError: EIO"))
    assert not d2.up and "OSError: EIO" in d2.reason


def test_recorder_copies_the_rings_into_a_readable_session(tmp_path):
    clock = VirtualClock(5 * _NS)
    streams = StreamSpec(
        imu_rates={"left_arm": 50.0, "right_leg": 50.0},
        imu_uris={"left_arm": "serial:/dev/ttyUSB0", "right_leg": "ble:C1:D2:E3:F4:A5:B6"},
        camera_fps=10.0,
        camera_uri="/dev/video0",
    )
    buf = display_buffer(streams, clock)
    rng = np.random.default_rng(0)
    frame0 = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    buf.camera.push_frame(clock() - 1, frame0)  # before the start: not recorded
    rec = RingRecorder.start(streams, buf, tmp_path)
    values = rng.normal(size=(100, 3)).astype(np.float32)
    frames = []
    for i in range(100):  # 2 s at 50 Hz, frames at 10 Hz
        t = clock() + (i + 1) * 20_000_000
        buf.imu["left_arm"].push(t, values[i])
        buf.imu["right_leg"].push(t, -values[i])
        if i % 5 == 0:
            frames.append(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
            buf.camera.push_frame(t, frames[-1])
        if i == 50:
            rec.poll()  # a poll in the middle must not duplicate or lose rows
    rec.close()
    assert rec.errors == 0
    meta = json.loads((rec.path / "session.json").read_text())
    assert meta["complete"] is True
    with open_session(rec.path) as s:
        np.testing.assert_array_equal(s.imu["left_arm"].values, values)
        np.testing.assert_array_equal(s.imu["right_leg"].values, -values)
        np.testing.assert_allclose(np.diff(s.imu["left_arm"].t), 0.02, atol=1e-9)
        assert s.video is not None and s.video.num_frames == len(frames)
        assert (s.video.width, s.video.height) == (32, 24)
    # what the session says about its streams is the rig's one description
    doc = json.loads((rec.path / "session.json").read_text())
    assert {p: d["source"] for p, d in doc["imu"].items()} == dict(streams.imu_uris)
    assert {p: d["rate_hz"] for p, d in doc["imu"].items()} == dict(streams.imu_rates)
    assert doc["camera"]["fps"] == 10.0 and doc["camera"]["source"] == "/dev/video0"


def test_recording_into_a_file_path_is_a_clear_error(tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    streams = StreamSpec(imu_rates={"left_arm": 50.0})
    with pytest.raises(InputError, match="not-a-dir"):
        RingRecorder.start(streams, display_buffer(streams), f)


def test_local_source_start_stop_runs_the_worker():
    ran = []

    def worker(stop):
        ran.append("started")
        while not stop.wait(0.01):
            pass
        ran.append("stopped")

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 2
        while len(ran) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    src = LocalSource(StreamBuffer(BufferConfig(camera=False)), worker=worker)
    src.start()
    wait_for(1)
    src.stop()  # returns at once; the worker drains in its thread
    src.start()  # a new run starts once the old one has drained
    wait_for(3)
    src.close()
    assert ran == ["started", "stopped", "started", "stopped"]
