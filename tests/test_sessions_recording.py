"""Our recording format: write→read round trips, determinism, crash recovery, malformed files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.errors import FormatError, InputError
from evimae_stream.sessions import (
    CameraSpec,
    ImuSpec,
    RecordingSession,
    SessionWriter,
    open_session,
)
from tests.helpers.sessions import coded_frame, decode_index, imu_values, write_session

REPO = Path(__file__).resolve().parents[1]
T0 = 5_000_000_000


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    return write_session(tmp_path_factory.mktemp("rec") / "s", seconds=2.0, t0_ns=T0)


def test_imu_round_trip_with_device_time(session_dir):
    with open_session(session_dir) as s:
        assert isinstance(s, RecordingSession) and s.kind == "recording"
        la = s.imu["left_arm"]
        assert la.channels == ("ax", "ay", "az") and la.rate_hz == 50.0
        assert la.values.dtype == np.float32 and la.values.shape == (100, 3)
        np.testing.assert_array_equal(la.values, imu_values(np.arange(100)))
        np.testing.assert_allclose(la.t, np.arange(100) * 0.02, atol=1e-12)
        np.testing.assert_array_equal(la.t_dev, 1000.0 + np.arange(100) * 0.02)
        assert s.t0_ns == T0 and not s.recovery


def test_imu_round_trip_gyro_without_device_time(session_dir):
    with open_session(session_dir) as s:
        rl = s.imu["right_leg"]
        assert rl.channels == ("ax", "ay", "az", "gx", "gy", "gz") and rl.t_dev is None
        np.testing.assert_array_equal(rl.values, imu_values(np.arange(200), 6))
        np.testing.assert_allclose(rl.t, np.arange(200) * 0.01, atol=1e-12)
        np.testing.assert_array_equal(rl.acc, rl.values[:, :3])


def test_labels_and_classes(session_dir):
    with open_session(session_dir) as s:
        assert [(x.start_s, x.end_s, x.label) for x in s.labels] == [
            (0.0, 1.0, "walking"),
            (1.0, 2.0, 'stirring "fast", gently'),
        ]
        assert s.classes == sorted(['stirring "fast", gently', "walking"])
        assert s.label_at(0.5) == "walking" and s.label_at(1.5).startswith("stirring")


def test_classes_from_meta(tmp_path):
    with SessionWriter(
        tmp_path / "s", imu={"left_arm": ImuSpec(50.0)}, meta={"classes": ["b", "a"]}
    ):
        pass
    assert open_session(tmp_path / "s").classes == ["b", "a"]


def test_video_random_access_by_time(session_dir):
    with open_session(session_dir) as s:
        assert s.has_video and s.video.num_frames == 60
        assert (s.video.width, s.video.height, s.video.fps) == (96, 64, 30.0)
        times = s.frame_times()
        np.testing.assert_allclose(times, np.arange(60) * 0.033333333, atol=1e-9)
        for i in [59, 0, 31, 30, 17, 45, 2]:  # back and forth across segments
            frame = s.frame_at(times[i] + 0.004)
            assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
            assert decode_index(frame) == i
            ref = coded_frame(i).astype(int)
            assert np.abs(frame.astype(int) - ref).mean() < 8  # lossy codec, same picture
        assert decode_index(s.frame_at(-5.0)) == 0 and decode_index(s.frame_at(99.0)) == 59
        assert decode_index(s.frame_at(times[10] + 0.02)) == 11  # nearest, not floor


def test_video_sequential(session_dir):
    with open_session(session_dir) as s:
        got = [(t, decode_index(f)) for t, f in s.iter_frames(0.5, 1.5)]
        times = s.frame_times()
        want = [i for i in range(60) if 0.5 <= times[i] < 1.5]
        assert [i for _, i in got] == want
        np.testing.assert_allclose([t for t, _ in got], times[want])
        assert [decode_index(f) for _, f in s.iter_frames()] == list(range(60))
        assert s.duration_s == pytest.approx(1.99)


def test_imu_only_session(tmp_path):
    with SessionWriter(tmp_path / "s", imu={"left_arm": ImuSpec(50.0)}) as w:
        w.add_imu("left_arm", w.t0_ns + 1000, [0.0, 0.0, 1.0])
    s = open_session(tmp_path / "s")
    assert not s.has_video and s.video is None and list(s.iter_frames()) == []
    assert s.imu["left_arm"].t[0] == pytest.approx(1e-6)
    with pytest.raises(InputError, match="no video"):
        s.frame_at(0.0)


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_same_data_gives_same_bytes(tmp_path):
    a = _digest(write_session(tmp_path / "a", seconds=1.0))
    b = _digest(write_session(tmp_path / "b", seconds=1.0))
    assert a == b and "video/00000000.mp4" in a and len(a) >= 6


def test_writer_rejects_bad_input(tmp_path):
    w = SessionWriter(
        tmp_path / "s", imu={"left_arm": ImuSpec(50.0)}, camera=CameraSpec(32, 24, 30)
    )
    with pytest.raises(ValueError, match="unknown IMU placement"):
        w.add_imu("right_arm", 1, [0, 0, 0])
    with pytest.raises(ValueError, match="expected 3"):
        w.add_imu("left_arm", 1, [0, 0])
    w.add_imu("left_arm", 10, [0, 0, 1])
    with pytest.raises(ValueError, match="does not increase"):
        w.add_imu("left_arm", 10, [0, 0, 1])
    with pytest.raises(ValueError, match="does not increase"):
        w.add_imu_block("left_arm", np.array([11, 11]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        w.add_imu("left_arm", 20, [np.nan, 0, 1])
    with pytest.raises(ValueError, match="shape"):
        w.add_frame(1, np.zeros((24, 32), np.uint8))
    with pytest.raises(ValueError, match="bad span"):
        w.add_label(2.0, 1.0, "x")
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.add_imu("left_arm", 30, [0, 0, 1])
    with pytest.raises(InputError, match="already holds"):
        SessionWriter(tmp_path / "s", imu={"left_arm": ImuSpec(50.0)})
    with pytest.raises(ValueError, match="channels"):
        ImuSpec(50.0, channels=("ax", "ay"))
    with pytest.raises(ValueError, match="rate_hz"):
        ImuSpec(0.0)


def test_writer_is_thread_safe(tmp_path):
    import threading

    placements = ("left_arm", "right_arm", "left_leg", "right_leg")
    w = SessionWriter(tmp_path / "s", imu={p: ImuSpec(100.0) for p in placements}, t0_ns=0)

    def run(p: str) -> None:
        for i in range(500):
            w.add_imu(p, 1 + i * 10_000_000, imu_values(i))

    threads = [threading.Thread(target=run, args=(p,)) for p in placements]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    s = open_session(tmp_path / "s")
    for p in placements:
        np.testing.assert_array_equal(s.imu[p].values, imu_values(np.arange(500)))


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from evimae_stream.sessions import SessionWriter, ImuSpec, CameraSpec
    from tests.helpers.sessions import coded_frame, imu_values
    w = SessionWriter(sys.argv[1], imu={"left_arm": ImuSpec(50.0), "right_arm": ImuSpec(50.0)},
                      camera=CameraSpec(96, 64, 30.0))
    t0 = w.t0_ns
    n_imu = n_frame = 0
    while True:
        now = time.monotonic_ns()
        while t0 + n_imu * 20_000_000 <= now:
            for p in ("left_arm", "right_arm"):
                w.add_imu(p, t0 + n_imu * 20_000_000, imu_values(n_imu))
            n_imu += 1
        while t0 + n_frame * 33_333_333 <= now:
            w.add_frame(t0 + n_frame * 33_333_333, coded_frame(n_frame))
            n_frame += 1
        print(now, flush=True)
        time.sleep(0.005)
    """
)


def test_sigkill_keeps_everything_older_than_one_second(tmp_path):
    path = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        first = last = None
        for line in proc.stdout:
            last = int(line)
            first = first if first is not None else last
            if last - first >= 3_000_000_000:
                break
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic_ns()
    finally:
        proc.kill()
        proc.wait()
    assert last is not None and proc.returncode == -signal.SIGKILL
    reached = min(last, killed_at)
    s = open_session(path)
    assert any("not closed cleanly" in r for r in s.recovery)
    horizon = (reached - s.t0_ns) / 1e9 - 1.0
    for p in ("left_arm", "right_arm"):
        st = s.imu[p]
        n_due = int(np.floor(horizon / 0.02)) + 1
        assert len(st.t) >= n_due
        np.testing.assert_array_equal(st.values, imu_values(np.arange(len(st.t))))
        np.testing.assert_allclose(st.t, np.arange(len(st.t)) * 0.02, atol=1e-9)
    times = s.frame_times()
    n_due = int(np.floor(horizon / 0.033333333)) + 1
    assert s.video.num_frames >= n_due and n_due > 30
    for t, frame in s.iter_frames():
        i = decode_index(frame)
        assert abs(times[i] - t) < 1e-9 and abs(t - i * 0.033333333) < 1e-6


def test_truncated_tail_is_recovered_not_an_error(session_dir, tmp_path):
    d = tmp_path / "s"
    shutil.copytree(session_dir, d)
    f = d / "imu_left_arm.csv"
    f.write_bytes(f.read_bytes()[:-7])  # cut the last row mid-way
    segs = sorted((d / "video").iterdir())
    segs[-1].write_bytes(segs[-1].read_bytes()[:300])  # a last segment cut by a crash
    s = open_session(d)
    assert len(s.imu["left_arm"].t) == 99
    np.testing.assert_array_equal(s.imu["left_arm"].values, imu_values(np.arange(99)))
    assert s.video.num_frames == int(segs[-1].stem)
    assert [decode_index(f) for _, f in s.iter_frames()] == list(range(s.video.num_frames))
    assert any("incomplete last row" in r for r in s.recovery)
    assert any("unreadable segment" in r for r in s.recovery)


def _damage(session_dir: Path, tmp_path: Path, name: str, fn) -> Path:
    d = tmp_path / "bad"
    shutil.copytree(session_dir, d)
    lines = (d / name).read_text().split("\n")
    (d / name).write_text("\n".join(fn(lines)))
    return d


@pytest.mark.parametrize(
    ("name", "fn", "row", "words"),
    [
        ("imu_left_arm.csv", lambda ls: [ls[0].replace(",az", ""), *ls[1:]], 1, "header"),
        (
            "imu_left_arm.csv",
            lambda ls: [*ls[:5], ls[5].replace(",", ",x", 3), *ls[6:]],
            6,
            "number",
        ),
        ("imu_left_arm.csv", lambda ls: [*ls[:7], ls[3], *ls[8:]], 8, "does not increase"),
        ("imu_left_arm.csv", lambda ls: [*ls[:9], ls[9][:12], *ls[10:]], 10, "fields"),
        ("video_ts.csv", lambda ls: [*ls[:4], "7,123", *ls[5:]], 5, "frame_index"),
        ("labels.csv", lambda ls: [ls[0], "1.0,oops,walking", *ls[2:]], 2, "could not convert"),
        ("session.json", lambda ls: [*ls[:3], "{{", *ls[3:]], 4, "bad JSON"),
    ],
)
def test_malformed_files_name_file_and_row(session_dir, tmp_path, name, fn, row, words):
    d = _damage(session_dir, tmp_path, name, fn)
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = str(e.value)
    assert "\n" not in msg and name in msg and f"row {row}" in msg and words in msg


def test_unrecognised_path(tmp_path):
    with pytest.raises(InputError, match="not a recognised session"):
        open_session(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        open_session(tmp_path / "nope")


# -- declared rates against the timestamps ---------------------------------------------------------


def _one_imu_session(path: Path, t_ns: np.ndarray, declared_hz: float) -> Path:
    """A session with one IMU whose samples carry the stamps ``t_ns`` and whose session.json
    declares ``declared_hz``."""
    with SessionWriter(path, imu={"left_arm": ImuSpec(declared_hz)}, t0_ns=T0) as w:
        w.add_imu_block("left_arm", T0 + t_ns, imu_values(np.arange(len(t_ns))))
    return path


def _stamps(rate: float, seconds: float, seed: int, jitter: float = 0.0, drop: float = 0.0):
    """Sample times (ns from the start) of a sensor at ``rate``: arrival jitter uniform in
    [0, jitter) periods, a fraction ``drop`` of the samples lost."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = (np.arange(n) + jitter * rng.random(n)) * 1e9 / rate
    keep = rng.random(n) >= drop
    keep[0] = True
    return np.round(t[keep]).astype(np.int64)


def _batched(rate: float, seconds: float, per_batch: int) -> np.ndarray:
    """BLE-like arrival: ``per_batch`` samples share one stamp (the recorder moves each later one
    on by 1 ns), batches every ``per_batch`` periods."""
    n = int(rate * seconds)
    batch = (np.arange(n) // per_batch) * per_batch * 1e9 / rate
    return np.round(batch).astype(np.int64) + np.arange(n) % per_batch


@pytest.mark.parametrize(
    ("stamps", "declared"),
    [
        (_stamps(100.0, 5.0, 1, jitter=0.8, drop=0.05), 100.0),  # jitter of 0.8 periods
        (_stamps(50.0, 5.0, 2, jitter=0.3, drop=0.4), 50.0),  # 40 % of the samples lost
        (_batched(50.0, 5.0, 5), 50.0),  # five samples per BLE notification
        (_stamps(200.0, 3.0, 3) * (1 + 200e-6), 200.0),  # a clock 200 ppm slow
        (_stamps(50.0, 5.0, 4), 62.0),  # a nominal 62 Hz sensor that runs at 50 Hz: within 30 %
        (np.array([0, 1, 2, 4_000_000_000]), 50.0),  # too few samples to measure a rate
    ],
)
def test_real_timing_matches_its_declared_rate(tmp_path, stamps, declared):
    s = open_session(_one_imu_session(tmp_path / "s", np.asarray(stamps, np.int64), declared))
    assert len(s.imu["left_arm"].t) == len(stamps) and s.imu["left_arm"].rate_hz == declared


def _measured_rates(msg: str) -> tuple[float, float]:
    """(median-interval rate, count/span rate) as a rate error message states them."""
    m = re.search(r"give (\S+) samples/s .*; (\S+)/s over the whole span", msg)
    assert m, msg
    return float(m.group(1)), float(m.group(2))


def _rate_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "evimae_stream.sessions.recording" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize(
    ("stamps", "declared", "true_rate"),
    [
        (_stamps(100.0, 5.0, 5, jitter=0.3, drop=0.05), 50.0, 100.0),  # rate_hz written wrong
        (_stamps(50.0, 5.0, 6, jitter=0.3), 100.0, 50.0),  # a sensor at half its rate
        (_batched(50.0, 5.0, 5), 25.0, 50.0),  # batched, and declared at half its rate
    ],
)
def test_imu_at_another_rate_than_declared_reads_with_a_warning(
    tmp_path, caplog, stamps, declared, true_rate
):
    # what the sensor delivered is the recording: read all of it, and say so in one line
    d = _one_imu_session(tmp_path / "s", np.asarray(stamps, np.int64), declared)
    with caplog.at_level(logging.WARNING):
        s = open_session(d)
    assert len(s.imu["left_arm"].t) == len(stamps)
    (msg,) = _rate_warnings(caplog)
    assert "\n" not in msg and "imu_left_arm.csv" in msg and msg.endswith("read as recorded")
    assert f"declared rate is {declared:g}/s" in msg
    by_median, by_count = _measured_rates(msg)
    assert abs(by_count / true_rate - 1) < 0.1  # the message states the real rate
    assert by_median == pytest.approx(1e9 / np.median(np.diff(stamps)), rel=1e-3)


@pytest.mark.parametrize(
    ("stamps", "declared", "true_rate"),
    [
        (_stamps(50.0, 5.0, 7) // 1000, 50.0, 50e3),  # microseconds in the ns column
        (_stamps(50.0, 5.0, 8), 500.0, 50.0),  # ten times off: not a sensor running slow
    ],
)
def test_imu_timestamps_far_off_the_declared_rate_are_one_line(
    tmp_path, stamps, declared, true_rate
):
    d = _one_imu_session(tmp_path / "s", np.asarray(stamps, np.int64), declared)
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = str(e.value)
    assert "\n" not in msg and "imu_left_arm.csv" in msg and "imu.left_arm.rate_hz" in msg
    assert f"declared rate is {declared:g}/s" in msg
    _, by_count = _measured_rates(msg)
    assert abs(by_count / true_rate - 1) < 0.1


def _edit_json(d: Path, fn) -> None:
    info = json.loads((d / "session.json").read_text())
    fn(info)
    (d / "session.json").write_text(json.dumps(info))


def test_camera_fps_is_checked_against_video_ts(session_dir, tmp_path, caplog):
    d = tmp_path / "s"
    shutil.copytree(session_dir, d)
    _edit_json(d, lambda info: info["camera"].update(fps=24.0))  # 30 fps: within 30 %
    assert open_session(d).video.fps == 24.0
    _edit_json(d, lambda info: info["camera"].update(fps=60.0))  # a camera giving half its fps
    with caplog.at_level(logging.WARNING):
        assert open_session(d).video.num_frames > 0
    (msg,) = _rate_warnings(caplog)
    assert "video_ts.csv" in msg and "declared rate is 60/s" in msg
    assert all(abs(r / 30.0 - 1) < 0.01 for r in _measured_rates(msg))
    _edit_json(d, lambda info: info["camera"].update(fps=600.0))  # 20x: not a slow camera
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = str(e.value)
    assert "\n" not in msg and "video_ts.csv" in msg and "camera.fps" in msg
    assert "declared rate is 600/s" in msg


def test_camera_with_dropped_and_jittery_frames_reads(tmp_path):
    rng = np.random.default_rng(0)
    kept = [i for i in range(60) if i % 3 != 1]  # every third frame lost
    with SessionWriter(tmp_path / "s", imu={}, camera=CameraSpec(96, 64, 30.0), t0_ns=T0) as w:
        for i in kept:
            w.add_frame(T0 + round((i + 0.4 * rng.random()) * 1e9 / 30), coded_frame(i))
    s = open_session(tmp_path / "s")
    assert s.video.num_frames == len(kept) and s.video.fps == 30.0
    assert [decode_index(f) for _, f in s.iter_frames()] == kept


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda info: info["imu"]["left_arm"].update(rate_hz="50"), "rate_hz '50'"),
        (lambda info: info["imu"]["left_arm"].update(rate_hz=True), "rate_hz True"),
        (lambda info: info["imu"].update(left_arm=[50.0]), "IMU 'left_arm'"),
        (lambda info: info["imu"]["left_arm"].update(channels="ax"), "bad channels"),
        (lambda info: info["imu"]["left_arm"].update(file=7), "bad file 7"),
        (lambda info: info["camera"].pop("fps"), "camera: bad fps None"),
        (lambda info: info["camera"].update(width=96.5), "size 96.5x64"),
    ],
)
def test_bad_session_json_fields_are_one_line(session_dir, tmp_path, edit, words):
    d = tmp_path / "s"
    shutil.copytree(session_dir, d)
    _edit_json(d, edit)
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = str(e.value)
    assert "\n" not in msg and "session.json" in msg and words in msg
