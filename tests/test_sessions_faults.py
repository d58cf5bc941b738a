"""Damaged and hostile session files (issue 16, items 15, 16, 21, 22): each is one line naming the
file, the field or row, what is wrong and what to do (exit code 2 from the CLI, no traceback), or
is read as far as it is whole and says what was skipped."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.errors import FormatError, InputError
from evimae_stream.sessions import open_session
from tests.helpers.cli import cli
from tests.helpers.sessions import build_cmummac, build_wear, decode_index, write_session

T0 = 5_000_000_000


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    return write_session(tmp_path_factory.mktemp("rec") / "s", seconds=2.0, t0_ns=T0)


def _copy(session_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "s"
    shutil.copytree(session_dir, d)
    return d


def _edit_json(d: Path, fn) -> None:
    info = json.loads((d / "session.json").read_text())
    fn(info)
    (d / "session.json").write_text(json.dumps(info))


def _one_line(exc: pytest.ExceptionInfo, *words: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "np." not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# -- item 16: every field of session.json is type-checked -----------------------------------------


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda i: i["camera"].update(timestamps=5), "camera.timestamps"),
        (lambda i: i["camera"].update(video_dir=None), "camera.video_dir"),
        (lambda i: i["meta"].update(classes=5), "meta.classes"),
        (lambda i: i["meta"].update(classes=["a", 3]), "meta.classes"),
        (lambda i: i.update(t0_ns=10**30), "t0_ns"),
        (lambda i: i.update(t0_ns=5.0e9), "t0_ns"),
        (lambda i: i.update(camera=[96, 64]), "camera: expected an object"),
        (lambda i: i.update(complete="yes"), "complete"),
    ],
)
def test_session_json_field_types_are_validated(session_dir, tmp_path, edit, words):
    d = _copy(session_dir, tmp_path)
    _edit_json(d, edit)
    with pytest.raises(FormatError) as e:
        open_session(d)
    _one_line(e, "session.json", words)


def test_session_json_bad_type_via_cli_is_one_line_exit_2(session_dir, tmp_path):
    d = _copy(session_dir, tmp_path)
    _edit_json(d, lambda i: i["camera"].update(timestamps=5))
    r = cli("--replay", d, "--speed", "max", "--quiet", timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "camera.timestamps" in r.stderr


# -- item 15: times far outside the stream's span -----------------------------------------------


def test_imu_row_far_in_the_future_names_file_and_row(session_dir, tmp_path):
    d = _copy(session_dir, tmp_path)
    f = d / "imu_left_arm.csv"
    lines = f.read_text().splitlines()
    t, rest = lines[-1].split(",", 1)
    lines[-1] = f"{int(t) + 10**17},{rest}"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as e:
        open_session(d)
    _one_line(e, "imu_left_arm.csv", f"row {len(lines)}", "t_host_ns jumps")


def test_session_t0_far_before_the_samples_is_refused(session_dir, tmp_path):
    d = _copy(session_dir, tmp_path)
    _edit_json(d, lambda i: i.update(t0_ns=-(10**18)))
    with pytest.raises(FormatError) as e:
        open_session(d)
    _one_line(e, "session.json", "t0_ns")
    _edit_json(d, lambda i: i.update(t0_ns=T0 + 10**15))  # a valid number, 11.6 days late
    with pytest.raises(FormatError) as e:
        open_session(d)
    _one_line(e, "imu_left_arm.csv", "row 2", "from the session start", "t0_ns")


def test_cmummac_last_timestamp_far_in_the_future_names_the_row(tmp_path):
    csv = build_cmummac(tmp_path / "cmu", rows=90)
    lines = csv.read_text().splitlines()
    t, rest = lines[-1].split(",", 1)
    lines[-1] = f"{float(t) + 1e9:.6f},{rest}"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as e:
        open_session(csv)
    _one_line(e, "S07_Brownie.csv", "row 91", "timestamp jumps")


# -- item 21: one damaged middle video segment -----------------------------------------------------


def test_damaged_middle_segment_skips_only_that_segment(tmp_path):
    d = write_session(tmp_path / "s", seconds=3.0, t0_ns=T0)  # 90 frames in 0.5 s segments
    segments = sorted((d / "video").iterdir())
    assert len(segments) >= 4
    bad = segments[1]
    lost = range(int(bad.stem), int(segments[2].stem))
    bad.write_bytes(b"")
    s = open_session(d)
    kept = [i for i in range(90) if i not in lost]
    assert s.video.num_frames == len(kept)
    assert [decode_index(f) for _, f in s.iter_frames()] == kept
    np.testing.assert_allclose(s.frame_times(), np.array(kept) * 0.033333333, atol=1e-6)
    assert decode_index(s.frame_at(kept[-1] / 30)) == kept[-1]
    (warning,) = [r for r in s.recovery if "unreadable" in r]
    assert bad.name in warning and f"frames {lost[0]}..{lost[-1]}" in warning


# -- item 22: the smaller ones ---------------------------------------------------------------------


def test_replay_of_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "sbj_0.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        open_session(fifo)
    r = cli("--replay", fifo, "--speed", "max", "--quiet", timeout=240)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "FIFO" in r.stderr


def test_wear_label_with_a_non_utf8_byte_names_row_and_encoding(tmp_path, wear_dir):
    csv = build_wear(tmp_path / "wear", wear_dir / "right_wrist_0_10.csv", rows=200)
    lines = csv.read_bytes().split(b"\n")
    lines[5] = lines[5].rsplit(b",", 1)[0] + b",jogging \xe9"
    csv.write_bytes(b"\n".join(lines))
    with pytest.raises(FormatError) as e:
        open_session(csv)
    _one_line(e, "sbj_0.csv", "row 6", "0xe9", "UTF-8")


def test_cmummac_keystep_file_with_a_bad_byte_is_not_skipped(tmp_path):
    csv = build_cmummac(tmp_path / "cmu")
    (tmp_path / "cmu" / "S07_Brownie_keysteps.csv").write_bytes(
        b'0.0,1.2,"2 stir the mix \xff"\n1.2,2.5,"1 crack egg"\n'
    )
    with pytest.raises(FormatError) as e:
        open_session(csv)
    _one_line(e, "S07_Brownie_keysteps.csv", "row 1", "0xff")


@pytest.mark.parametrize("name", ["../outside.csv", "/etc/passwd"])
def test_imu_file_is_confined_to_the_session_directory(session_dir, tmp_path, name):
    d = _copy(session_dir, tmp_path)
    (tmp_path / "outside.csv").write_text("secret first line\n")
    _edit_json(d, lambda i: i["imu"]["left_arm"].update(file=name))
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = _one_line(e, "session.json", "imu.left_arm.file", "outside the session directory")
    assert "secret" not in msg and "root:" not in msg


def test_row_errors_print_plain_numbers(session_dir, tmp_path):
    d = _copy(session_dir, tmp_path)
    f = d / "imu_left_arm.csv"
    lines = f.read_text().splitlines()
    lines[8] = lines[4]
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as e:
        open_session(d)
    msg = _one_line(e, "row 9", "does not increase")
    assert "np.int64" not in msg and str(T0 + 3 * 20_000_000) in msg
