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
            return DriverStats("x", "down", 10, 0, 1, 1, 0, 2, "OSError: gone")

    drv = Feeding()
    health = buffer_health(buffer, {"left_arm": drv, "right_arm": drv})
    assert list(health) == ["left_arm", "right_arm"] and Feeding.reads == 1
    left = health["left_arm"]
    assert not left.up and left.state == "down" and "OSError: gone" in left.reason
    assert left.bad_frames == 2 and left.reconnects == 2 and left.samples == 10
    # its newest sample is long past (host time 0.18 s): the ring is linked but not usable
    assert left.event("stale") == {"up": False, "rate_hz": 50.0, "drops": 0, "missing": "stale"}
    summary = left.summary()
    assert summary["samples"] == 10 and summary["driver"]["last_error"] == "OSError: gone"
    assert "driver" not in buffer_health(buffer)["left_arm"].summary()


def test_health_is_never_up_for_data_no_window_can_use():
    """Item 16.2: a stream whose link is up but whose newest sample is seconds behind the host
    clock is not "up" anywhere (the health record, a window's event, the summary), and says
    why: "lagging" while samples still arrive but map late (a device counter that stood still
    for 3 s, before its time map has re-anchored), "stale" when nothing arrives."""
    from evimae_stream.buffer import BufferConfig
    from evimae_stream.clock import VirtualClock
    from evimae_stream.health import StreamHealth

    ns = 1_000_000_000
    clock = VirtualClock(10 * ns)
    buffer = StreamBuffer(
        BufferConfig(placements=("left_arm", "right_arm"), camera=False), clock=clock
    )
    left, right = buffer.imu["left_arm"], buffer.imu["right_arm"]
    up = DriverStats("x", "up", 0, 0, 0, 0, 0, 0, None)
    k = 0

    def push(seconds: float, right_too: bool = True) -> None:
        nonlocal k
        for _ in range(round(seconds * 50)):
            t = clock() + 20_000_000
            clock.set_ns(t)
            left.push(t, np.zeros(3, np.float32), t_dev=k / 50)  # a sample counter
            if right_too:
                right.push(t, np.zeros(3, np.float32))
            k += 1

    push(5.0)
    assert all(StreamHealth(c, up).up for c in buffer.health().values())
    clock.set_ns(clock() + 3 * ns)  # 3 s in which left's counter stands still, right is silent
    push(0.3, right_too=False)
    health = {n: StreamHealth(c, up) for n, c in buffer.health().items()}
    lag, stale = health["left_arm"], health["right_arm"]
    assert not lag.up and lag.reason.startswith("lagging: its newest sample maps 3.0")
    assert not stale.up and stale.reason.startswith("stale: no sample for 3.3")
    for name, h in health.items():
        assert h.event(None)["up"] is False and h.summary()["up"] is False, name
        assert buffer.missing_streams()[name] == h.reason
    push(1.0)  # the time map re-anchors on the late samples; right is back
    assert all(StreamHealth(c, up).up for c in buffer.health().values())
