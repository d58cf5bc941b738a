"""The one stream description (evimae_stream.streams.StreamSpec) and the one health record
(evimae_stream.health.StreamHealth): validation, what each is built from, what reads them."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.factory import plan_sources
from evimae_stream.buffer import StreamBuffer
from evimae_stream.errors import InputError
from evimae_stream.health import DriverStats, buffer_health
from evimae_stream.sessions import open_session
from evimae_stream.streams import StreamSpec
from tests.helpers.runtime import make_session


def test_a_stream_spec_is_validated_and_kept_in_placement_order():
    spec = StreamSpec(imu_rates={"right_leg": 100, "left_arm": 50.0}, camera_fps=15.0)
    assert spec.placements == ("left_arm", "right_leg")
    assert spec.names == ("left_arm", "right_leg", "camera")
    assert spec.imu_rates["right_leg"] == 100.0
    with pytest.raises(InputError, match="left_foot"):
        StreamSpec(imu_rates={"left_foot": 50.0})
    with pytest.raises(InputError, match="left_arm"):
        StreamSpec(imu_rates={"left_arm": 0.0})
    with pytest.raises(InputError, match="fps"):
        StreamSpec(camera_fps=-1.0)
    with pytest.raises(TypeError):
        spec.imu_rates["left_leg"] = 50.0  # type: ignore[index]


def test_the_stream_spec_of_a_session_and_of_live_options(tmp_path):
    path = make_session(tmp_path / "sess", seconds=6.0)
    with open_session(path) as session:
        spec = StreamSpec.from_session(session, skip_imus=("left_leg",))
        assert spec.placements == tuple(p for p in session.imu if p != "left_leg")
        assert spec.camera_fps == session.video.fps and spec.camera_size == (128, 96)
        assert spec.imu_uris["left_arm"] == spec.camera_uri == f"replay of {session.path}"
        assert not StreamSpec.from_session(session, camera=False).camera
    plan = plan_sources(["left_arm=synthetic?rate=100", "right_arm=synthetic"], "synthetic")
    live = plan.streams(default_rate_hz=50.0)
    assert dict(live.imu_rates) == {"left_arm": 100.0, "right_arm": 50.0}
    assert live.camera_fps == 30.0 and live.camera_uri == "synthetic"
    assert plan.source == "left_arm=synthetic?rate=100 right_arm=synthetic camera=synthetic"


def test_buffer_configs_for_windows_and_for_display():
    spec = StreamSpec(imu_rates={"left_arm": 50.0}, camera_fps=10.0)
    windows = spec.buffer_config(span_s=2.0, stale_after_s=0.5)
    assert windows.imu_seconds == 8.0 and windows.frame_capacity == 48
    assert windows.stale_after_s == 0.5 and windows.camera_fps == 10.0
    display = StreamSpec(imu_rates={"left_arm": 50.0}).buffer_config(imu_channels=6)
    assert not display.camera and display.imu_channels == 6 and display.camera_fps == 30.0


def test_one_health_record_for_events_summary_and_window():
    buffer = StreamBuffer(
        StreamSpec(imu_rates={"left_arm": 50.0, "right_arm": 50.0}).buffer_config()
    )
    for k in range(10):
        buffer.imu["left_arm"].push(k * 20_000_000, np.zeros(3, np.float32))

    class Feeding:  # one driver feeding both streams: its stats are read once
        reads = 0

        @property
        def stats(self):
            Feeding.reads += 1
            return DriverStats("x", "down", 10, 0, 1, 1, 0, 2, "OSError: gone", 0.0)

    drv = Feeding()
    health = buffer_health(buffer, {"left_arm": drv, "right_arm": drv})
    assert list(health) == ["left_arm", "right_arm"] and Feeding.reads == 1
    left = health["left_arm"]
    assert not left.up and left.state == "down" and "OSError: gone" in left.reason
    assert left.bad_frames == 2 and left.reconnects == 2 and left.samples == 10
    assert left.event("stale") == {"up": True, "rate_hz": left.event(None)["rate_hz"],
                                   "drops": 0, "missing": "stale"}  # fmt: skip
    summary = left.summary()
    assert summary["samples"] == 10 and summary["driver"]["last_error"] == "OSError: gone"
    assert "driver" not in buffer_health(buffer)["left_arm"].summary()
