"""Replay: a recorded session flows into sinks with its recorded timing, at any speed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.base import LinkState
from drivers.replay import ReplayDriver
from evimae_stream.errors import InputError
from evimae_stream.sessions import open_session
from evimae_stream.sessions.playback import ReplaySource
from tests.helpers.sessions import write_replay_session

T0 = 5_000_000_000


class ListSink:
    """Collects what a driver delivers (the sink is not under test here)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[int, np.ndarray, float | None]] = []
        self.frames: list[tuple[int, np.ndarray]] = []
        self.states: list[str] = []

    def push(self, t_host_ns, values, t_dev=None) -> None:
        with self.lock:
            self.samples.append((t_host_ns, np.array(values), t_dev))

    def push_frame(self, t_host_ns, frame) -> None:
        with self.lock:
            self.frames.append((t_host_ns, frame.copy()))

    def mark_down(self, reason: str) -> None:
        self.states.append("down:" + reason)

    def mark_up(self) -> None:
        self.states.append("up")


@pytest.fixture()
def session(tmp_path: Path):
    s = open_session(write_replay_session(tmp_path / "rec"))
    yield s
    s.close()


def test_advance_pushes_everything_up_to_t_with_recorded_timing(session) -> None:
    arm, leg, cam = ListSink(), ListSink(), ListSink()
    src = ReplaySource(
        session, {"left_arm": arm, "right_leg": leg, "left_leg": ListSink()}, cam, t0_ns=T0
    )
    src.advance_to(1.0)
    expect = session.imu["left_arm"]
    k = int(np.searchsorted(expect.t, 1.0, "right"))
    assert len(arm.samples) == k
    stamps = np.array([s[0] for s in arm.samples])
    assert np.array_equal(stamps, T0 + np.round(expect.t[:k] * 1e9).astype(np.int64))
    assert np.allclose(np.stack([s[1] for s in arm.samples]), expect.values[:k])
    assert [s[2] for s in arm.samples] == pytest.approx(list(expect.t_dev[:k]))
    frame_t = session.frame_times()
    assert len(cam.frames) == int(np.searchsorted(frame_t, 1.0, "right"))
    for t_ns, frame in cam.frames:
        ref = session.frame_at((t_ns - T0) / 1e9)
        assert np.abs(frame.astype(int) - ref.astype(int)).mean() < 2
    src.advance_to(10.0)
    assert src.done
    assert len(arm.samples) == len(expect.t) and len(leg.samples) == len(session.imu["right_leg"].t)
    assert len(cam.frames) == len(frame_t)
    assert src.advance_to(20.0) == 0


def test_without_frame_sink_no_video_is_decoded(session) -> None:
    arm = ListSink()
    src = ReplaySource(session, {"left_arm": arm}, None)
    src.advance_to(100.0)
    assert src.done and src.pushed_frames == 0 and src.pushed_samples == len(arm.samples)


def test_seek_back_keeps_stamps_monotonic(session) -> None:
    arm = ListSink()
    src = ReplaySource(session, {"left_arm": arm}, None, t0_ns=T0)
    src.advance_to(1.5)
    last = arm.samples[-1][0]
    src.seek(0.5, host_ns=last + 1_000_000)
    src.advance_to(1.0)
    stamps = np.array([s[0] for s in arm.samples])
    assert np.all(np.diff(stamps) > 0)
    replayed = [s for s in arm.samples if s[0] > last]
    t = session.imu["left_arm"].t
    assert len(replayed) == int(np.sum((t >= 0.5) & (t <= 1.0)))


def test_driver_paces_at_speed_and_ends(session) -> None:
    arm, cam = ListSink(), ListSink()
    drv = ReplayDriver(session, {"left_arm": arm}, cam, speed=10.0)
    drv.start()
    drv.join(5.0)
    assert drv.state is LinkState.ENDED
    assert len(arm.samples) == len(session.imu["left_arm"].t)
    stamps = np.array([s[0] for s in arm.samples], dtype=np.float64)
    span_s = (stamps[-1] - stamps[0]) / 1e9
    recorded = session.imu["left_arm"].t[-1] - session.imu["left_arm"].t[0]
    assert span_s == pytest.approx(recorded / 10.0, rel=1e-6)
    assert arm.states[0] == "up" and arm.states[-1].startswith("down")
    assert drv.stats.samples == len(arm.samples) + len(cam.frames)


def test_pause_holds_and_resume_continues(session) -> None:
    arm = ListSink()
    drv = ReplayDriver(session, {"left_arm": arm}, None, speed=2.0)
    drv.start()
    time.sleep(0.2)
    drv.pause()
    time.sleep(0.05)
    held = len(arm.samples)
    time.sleep(0.3)
    assert len(arm.samples) == held and 0 < held < len(session.imu["left_arm"].t)
    drv.set_speed(50.0)
    drv.resume()
    drv.join(5.0)
    assert len(arm.samples) == len(session.imu["left_arm"].t)
    assert np.all(np.diff([s[0] for s in arm.samples]) > 0)


def test_bad_speed_is_an_input_error(session) -> None:
    with pytest.raises(InputError, match="speed"):
        ReplayDriver(session, {"left_arm": ListSink()}, None, speed=0)
