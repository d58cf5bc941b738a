"""LSL inlets as sensor sources, on loopback with real outlets: ``lsl:`` URIs, channel metadata
and units, a vanished stream marked down and recovered, ``devices`` listing the streams, and a
live run driven by a 50 Hz outlet that replays from its recording to identical predictions."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from drivers.config import LslImuConfig
from drivers.factory import make_imu_driver
from drivers.uri import parse_imu_ports
from evimae_stream.errors import InputError
from evimae_stream.sessions import open_session
from evimae_stream.types import PLACEMENTS
from tests.helpers.cli import SCORE_LAST_DIGIT, cli, predictions_by_window, replay_recording
from tests.helpers.lsl import Publisher, imu_outlet
from tests.helpers.paths import REPO
from tests.helpers.recording_sink import RecordingSink
from tests.helpers.runtime import make_artifact, make_session

pylsl = pytest.importorskip("pylsl")


def _wait(cond, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_lsl_uris_parse_to_configs():
    items = ["left_arm=lsl:name=Watch&cols=2,3,4&unit=m/s^2", "right_leg=lsl:type=IMU"]
    got = parse_imu_ports(items)
    assert got["left_arm"] == LslImuConfig(
        placement="left_arm", name="Watch", cols=("2", "3", "4"), unit="m/s^2",
        uri="--imu-ports item 'left_arm=lsl:name=Watch&cols=2,3,4&unit=m/s^2'",
    )  # fmt: skip
    assert got["right_leg"].predicate() == "type='IMU'"
    for bad, words in (("lsl:", "name the stream"), ("lsl:name=a&baud=9", "unknown option"),
                       ("lsl:name=a&unit=furlong", "unknown acc unit")):  # fmt: skip
        with pytest.raises(InputError, match=words):
            parse_imu_ports([bad])


def _pump(outlet, row, sink, count: int, timeout_s: float = 5.0) -> bool:
    """Push ``row`` at ~50 Hz until ``sink`` holds ``count`` samples (bounded)."""
    deadline = time.monotonic() + timeout_s
    while len(sink.samples) < count and time.monotonic() < deadline:
        outlet.push_sample(row)
        time.sleep(0.02)
    return len(sink.samples) >= count


def test_vanished_stream_is_marked_down_and_recovers():
    labels = ["AccX", "AccY", "AccZ", "Temp"]
    outlet = imu_outlet("lsl_test_vanish", labels, ["m/s^2"] * 3 + ["C"])
    sink = RecordingSink()
    driver = make_imu_driver(parse_imu_ports(["lsl:name=lsl_test_vanish"])["left_arm"], sink)
    try:
        driver.connect()
        driver.start()
        assert _pump(outlet, [9.80665, 0.0, -4.903325, 21.0], sink, 10)
        assert driver.state.value == "up"
        np.testing.assert_allclose(sink.samples[-1][1], [1.0, 0.0, -0.5], rtol=1e-6)  # in g
        t_host, _, t_dev = sink.samples[-1]
        # t_dev: the LSL stamp + time_correction, on this machine's LSL (= monotonic) clock
        assert abs(t_dev - t_host / 1e9) < 0.5
        del outlet  # the publisher goes away
        assert _wait(lambda: driver.state.value == "down")
        assert ("down", driver.stats.last_error) in sink.events
        outlet = imu_outlet("lsl_test_vanish", labels, ["m/s^2"] * 3 + ["C"])
        n = len(sink.samples)
        assert _pump(outlet, [0.0, 9.80665, 0.0, 21.0], sink, n + 10, timeout_s=10.0)
        assert driver.state.value == "up" and driver.stats.reconnects == 1
        assert [e for e, _ in sink.events][-2:] == ["down", "up"]
        np.testing.assert_allclose(sink.samples[-1][1], [0.0, 1.0, 0.0], rtol=1e-6)
    finally:
        driver.stop()
        del outlet


def test_a_driver_started_long_after_connect_is_not_stalled():
    """The stall clock starts with the stream: a live run connects every sensor, then builds
    its outputs, then starts them (seconds later on a loaded machine)."""
    outlet = imu_outlet("lsl_test_late", ["ax", "ay", "az"], ["g"] * 3)
    sink = RecordingSink()
    config = LslImuConfig(name="lsl_test_late", stall_timeout_s=1.0, uri="lsl:name=lsl_test_late")
    driver = make_imu_driver(config, sink)
    try:
        driver.connect()
        time.sleep(1.3)
        driver.start()
        time.sleep(0.4)  # the first reads find nothing yet
        assert _pump(outlet, [0.0, 0.0, 1.0], sink, 10)
        assert ("down", None) not in [(e, None) for e, _ in sink.events]
        assert driver.stats.reconnects == 0
    finally:
        driver.stop()
        del outlet


def test_cols_pick_one_sensor_of_a_stream_that_carries_two():
    labels = ["L_ax", "L_ay", "L_az", "R_ax", "R_ay", "R_az"]
    outlet = imu_outlet("lsl_test_two", labels, [""] * 6)
    sink = RecordingSink()
    uri = "right_arm=lsl:name=lsl_test_two&cols=R_ax,R_ay,R_az"
    driver = make_imu_driver(parse_imu_ports([uri])["right_arm"], sink)
    try:
        driver.connect()
        driver.start()
        assert _pump(outlet, [1, 2, 3, 4, 5, 6], sink, 5)
        np.testing.assert_array_equal(sink.samples[-1][1], [4, 5, 6])
    finally:
        driver.stop()
        del outlet


def test_a_stream_nobody_publishes_fails_connect_in_one_line():
    config = LslImuConfig(name="lsl_test_nobody", resolve_timeout_s=0.3, uri="lsl:name=nobody")
    driver = make_imu_driver(config, RecordingSink())
    with pytest.raises(Exception, match=r"lsl:name=nobody: cannot open: .*no LSL stream"):
        driver.connect()


def test_devices_lists_visible_lsl_streams():
    outlet = imu_outlet("lsl_test_listed", ["ax", "ay", "az"], ["g"] * 3)
    try:
        proc = cli("devices", "--ble-timeout", "0", "--cameras", "0", "--lsl-timeout", "1.5",
                   timeout=60)  # fmt: skip
    finally:
        del outlet
    assert proc.returncode == 0, proc.stderr
    assert "lsl_test_listed  type IMU  3 channels 50 Hz" in proc.stdout
    assert "--imu-ports left_arm=lsl:name=lsl_test_listed" in proc.stdout


@pytest.mark.slow
def test_without_pylsl_an_lsl_uri_fails_in_one_line_naming_the_extra():
    code = ("import sys; sys.modules['pylsl'] = None; from evimae_stream.cli import main; "
            "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, "--imu-ports", "lsl:name=x"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "lsl:name=x" in lines[0] and "[lsl]" in lines[0]


@pytest.mark.slow
def test_live_run_from_lsl_outlets_replays_to_identical_predictions(tmp_path):
    """Four outlets publish a session's IMU samples at 50 Hz; the live run through ``lsl:``
    URIs records what it received; the recording holds exactly those samples (a contiguous run
    of the session's) and replays to the live run's predictions, window for window."""
    sess = make_session(tmp_path / "sess", seconds=16.0, video=False)
    model = make_artifact(tmp_path / "model", modes=("imu_only",))
    with open_session(sess) as s:
        values = {p: s.imu[p].values for p in PLACEMENTS}
    outlets = {p: imu_outlet(f"lsl_test_{p}", ["ax", "ay", "az", "gx", "gy", "gz"],
                             ["g"] * 3 + ["deg/s"] * 3) for p in PLACEMENTS}  # fmt: skip
    publisher = Publisher(outlets, values).start()
    rec, out = tmp_path / "rec", tmp_path / "live.jsonl"
    try:
        proc = cli("--imu-ports", *[f"{p}=lsl:name=lsl_test_{p}&rate=50" for p in PLACEMENTS],
                   "--no-camera", "--model", model, "--duration", "8", "--record", rec,
                   "--jsonl", out, "--quiet", "--backend", "eager", timeout=120)  # fmt: skip
    finally:
        publisher.stop()
        outlets.clear()
    assert proc.returncode == 0, proc.stderr
    with open_session(rec) as r:
        for p in PLACEMENTS:
            got, sent = r.imu[p].values, values[p]
            k = int(np.flatnonzero((sent == got[0]).all(axis=1))[0])
            np.testing.assert_array_equal(got, sent[k : k + len(got)])
            assert len(got) >= 2 * 50  # a loaded machine starves the run for seconds
    # every window the live run predicted comes back the same from the recording (a loaded
    # machine may starve the live run's last seconds: windows without data are not compared;
    # scores may differ in their last written digit, see SCORE_LAST_DIGIT)
    live = {k: e for k, e in predictions_by_window(out).items() if e["label"]}
    replay = replay_recording(model, rec, tmp_path)
    assert len(live) >= 4 and set(live) <= set(replay), (sorted(live), sorted(replay))
    fields = ("t_ref_s", "mode", "imus", "filled", "label")
    for k, a in live.items():
        b = replay[k]
        assert [a[f] for f in fields] == [b[f] for f in fields], (k, a, b)
        for x, y in zip(a["topk"], b["topk"], strict=True):
            assert x["label"] == y["label"] and abs(x["score"] - y["score"]) <= SCORE_LAST_DIGIT, k
