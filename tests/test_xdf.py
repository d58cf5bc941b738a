"""XDF: a session exported with ``evimae-stream export --xdf`` reads back equal through
``pyxdf.load_xdf`` (values, stamps, labels as markers, frame timestamps, channel metadata) and
replays as the session does; a foreign-named XDF maps by ``--xdf-map``; a file whose writer was
SIGKILLed mid-recording still replays; without the ``[lsl]`` extra, one line names it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.sessions import open_session
from evimae_stream.sessions.xdf import markers_to_labels
from evimae_stream.sessions.xdf_writer import XdfWriter, info_xml, scan_chunks
from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO
from tests.helpers.runtime import make_artifact, make_session, replay_at_max_speed

pyxdf = pytest.importorskip("pyxdf")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("xdf")
    sess = make_session(root / "sess", seconds=12.0)
    out = root / "sess.xdf"
    proc = cli("export", sess, "--xdf", out)
    assert proc.returncode == 0 and f"wrote {out}" in proc.stderr, proc.stderr
    return root, sess, out, make_artifact(root / "model")


def test_export_reads_back_equal_with_pyxdf(made):
    _, sess, out, _ = made
    streams, header = pyxdf.load_xdf(str(out), dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    with open_session(sess) as s:
        t0 = s.t0_ns / 1e9
        assert int(header["info"]["t0_ns"][0]) == s.t0_ns
        for p, imu in s.imu.items():
            x = by_name[p]
            assert x["info"]["type"][0] == "IMU"
            assert float(x["info"]["nominal_srate"][0]) == imu.rate_hz
            np.testing.assert_array_equal(x["time_series"], imu.values)
            np.testing.assert_array_equal(x["time_stamps"], imu.t + t0)
            desc = x["info"]["desc"][0]
            chans = desc["channels"][0]["channel"]
            assert [c["label"][0] for c in chans] == list(imu.channels)
            assert [c["unit"][0] for c in chans] == ["g"] * 3 + ["deg/s"] * 3
            assert desc["placement"][0] == p
        marks = by_name["labels"]
        assert marks["info"]["type"][0] == "Markers"
        got = markers_to_labels(
            marks["time_stamps"] - t0, [m[0] for m in marks["time_series"]], s.duration_s
        )
        assert [g.label for g in got] == [g.label for g in s.labels]
        assert np.allclose([g.start_s for g in got], [g.start_s for g in s.labels], atol=1e-9)
        assert np.allclose([g.end_s for g in got], [g.end_s for g in s.labels], atol=1e-9)
        frames = by_name["video_frames"]
        np.testing.assert_array_equal(frames["time_stamps"], s.frame_times() + t0)
        np.testing.assert_array_equal(frames["time_series"][:, 0], np.arange(s.video.num_frames))


def test_exported_xdf_replays_like_the_session_without_video(made):
    _, sess, out, model = made
    a, _ = replay_at_max_speed(model, sess, camera=False)
    b, _ = replay_at_max_speed(model, out)
    assert len(a.predictions) == len(b.predictions) > 10
    for x, y in zip(a.predictions, b.predictions, strict=True):
        # XDF stamps are float64 host seconds: a stamp comes back within a few ns
        assert abs(x.t_ref_ns - y.t_ref_ns) <= 1000, x.index
        assert (x.index, x.label, x.mode) == (y.index, y.label, y.mode)
        if x.probs is not None:
            # XDF keeps one stamp per sample, not the device times: the replay fits its time
            # maps on those stamps, so resampled values (and probabilities) move slightly
            np.testing.assert_allclose(x.probs, y.probs, atol=1e-3)
    assert sum(p.label is not None for p in b.predictions) > 10


@pytest.mark.slow
def test_replay_xdf_from_the_cli_with_labels_and_eval(made, tmp_path):
    _, _, out, model = made
    jsonl = tmp_path / "x.jsonl"
    proc = cli("--replay", out, "--xdf-labels", "labels", "--eval", "--eval-out", tmp_path,
               "--speed", "max", "--model", model, "--jsonl", jsonl,
               "--backend", "eager")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    preds = [e for e in events(jsonl) if e["type"] == "prediction"]
    assert preds and all(p["mode"] == "imu_only" for p in preds if p["label"])
    assert {p["truth"] for p in preds} >= {"idle"}


def _foreign_file(path: Path, seconds: float = 6.0) -> Path:
    """Two IMUs named like a lab's apps: 'WristL' in m/s^2 and 'AnkleR' unlabelled."""
    rng = np.random.default_rng(1)
    with XdfWriter(path) as w:
        for name, unit in (("WristL", "m/s^2"), ("AnkleR", "")):
            desc = ET.Element("desc")
            chans = ET.SubElement(desc, "channels")
            for axis in "XYZ":
                ch = ET.SubElement(chans, "channel")
                ET.SubElement(ch, "label").text = f"Acc{axis}" if unit else f"ch{axis}"
                if unit:
                    ET.SubElement(ch, "unit").text = unit
            info = info_xml({"name": name, "type": "Accelerometer", "channel_count": 3,
                             "nominal_srate": 50.0, "channel_format": "float32"}, desc)  # fmt: skip
            sid = w.add_stream(info)
            n = int(seconds * 50)
            w.write(sid, 100.0 + np.arange(n) / 50, rng.normal(size=(n, 3)).astype(np.float32))
    return path


def test_foreign_names_map_by_option_and_units_convert(tmp_path):
    path = _foreign_file(tmp_path / "lab.xdf")
    with pytest.raises(Exception, match="--xdf-map"):
        open_session(path)
    s = open_session(path, xdf_map={"left_arm": "WristL", "right_leg": "AnkleR"})
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    raw = {x["info"]["name"][0]: x["time_series"] for x in streams}
    np.testing.assert_allclose(s.imu["left_arm"].values, raw["WristL"] / 9.80665, rtol=1e-6)
    np.testing.assert_array_equal(s.imu["right_leg"].values, raw["AnkleR"])
    assert s.imu["left_arm"].t[0] == 0.0 and s.t0_ns == 100_000_000_000


WRITER = """
import sys, time
import numpy as np
from evimae_stream.sessions.xdf import imu_channels, _desc_element, _stream
from evimae_stream.sessions.xdf_writer import XdfWriter
w = XdfWriter(sys.argv[1])
sids = {p: w.add_stream(_stream(p, "IMU", 3, 50.0, "float32", p,
        _desc_element(imu_channels(("ax", "ay", "az")), placement=p)))
        for p in ("left_arm", "right_leg")}
t = 0
while True:
    stamps = 10.0 + (t + np.arange(10)) / 50
    for p, sid in sids.items():
        w.write(sid, stamps, np.column_stack([np.sin(stamps), np.cos(stamps), np.ones(10)]))
    t += 10
    print(t, flush=True)
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_xdf_of_a_killed_writer_replays(made, tmp_path):
    _, _, _, model = made
    path = tmp_path / "killed.xdf"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or int(line) >= 300:  # 6 s of samples written
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    data = path.read_bytes()
    assert b"<sample_count>" not in data  # no footer: it was killed
    (tmp_path / "cut.xdf").write_bytes(data[:-7])  # and one cut mid-chunk
    for name in ("killed.xdf", "cut.xdf"):
        s = open_session(tmp_path / name)
        assert set(s.imu) == {"left_arm", "right_leg"} and s.duration_s >= 5.5
    jsonl = tmp_path / "cut.jsonl"
    run = cli("--replay", tmp_path / "cut.xdf", "--speed", "max", "--model", model, "--jsonl",
              jsonl, "--quiet", "--backend", "eager")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sum(1 for e in events(jsonl) if e.get("label")) >= 5


def test_scan_chunks_stops_at_a_cut_chunk(tmp_path):
    path = _foreign_file(tmp_path / "f.xdf", seconds=1.0)
    data = path.read_bytes()
    end, tags = scan_chunks(data)
    assert end == len(data) and tags == {1, 2, 3, 6}
    cut, _ = scan_chunks(data[:-3])
    assert cut < len(data) - 3 and scan_chunks(data[:cut])[0] == cut
    assert scan_chunks(b"not xdf") == (0, set())


@pytest.mark.slow
def test_without_the_extra_one_line_names_it(made):
    _, sess, out, model = made
    code = ("import sys; sys.modules['pyxdf'] = None; from evimae_stream.cli import main; "
            "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    for args in (["export", str(sess), "--xdf", str(out.with_name("n.xdf"))],
                 ["--replay", str(out), "--model", str(model)]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "[lsl]" in lines[0] and "pip install" in lines[0]
