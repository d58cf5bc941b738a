"""Synthetic sessions on disk: byte-identical by seed, readable by open_session, and the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.sessions import open_session
from evimae_stream.synthetic import IDLE, SyntheticWearer, WearerConfig, generate_session
from evimae_stream.types import PLACEMENTS

SMALL = {"actions": 6, "minutes": 0.6, "size": (64, 48)}


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    generate_session(out, seed=5, **SMALL)
    return out


def test_same_seed_gives_the_same_bytes(session_dir, tmp_path):
    generate_session(tmp_path / "b", seed=5, **SMALL)
    a, b = _hashes(session_dir), _hashes(tmp_path / "b")
    assert len(a) > 7 and any(k.startswith("video/") for k in a)
    assert a == b
    generate_session(tmp_path / "c", seed=6, video=False, **SMALL)
    c = _hashes(tmp_path / "c")
    assert all(a[k] != c[k] for k in c if k.startswith("imu_"))


def test_open_session_reads_back_what_the_wearer_produced(session_dir):
    w = SyntheticWearer(WearerConfig(seed=5, actions=6, minutes=0.6, width=64, height=48))
    with open_session(session_dir) as s:
        assert s.classes == w.classes
        got = [(seg.start_s, seg.end_s, seg.label) for seg in s.labels]
        assert [g[2] for g in got] == [lab for _, _, lab in w.script]
        np.testing.assert_allclose([g[:2] for g in got], [x[:2] for x in w.script], atol=1e-9)
        assert len({g[2] for g in got} - {IDLE}) == 6 and IDLE in {g[2] for g in got}
        assert sorted(s.imu) == sorted(PLACEMENTS)
        for p in PLACEMENTS:
            ref = w.imu_samples(p, 0.0, w.duration_s + 1.0)
            stream = s.imu[p]
            assert stream.rate_hz == 50.0 and stream.values.shape == (len(ref.t_host_s), 6)
            np.testing.assert_array_equal(stream.values, ref.values)
            np.testing.assert_allclose(stream.t, ref.t_host_s, atol=1e-9)
            np.testing.assert_allclose(stream.t_dev, ref.t_dev_s, rtol=0, atol=1e-9)
        assert s.has_video and (s.video.width, s.video.height) == (64, 48)
        assert s.video.num_frames == len(w.frame_times(0.0, w.duration_s + 1.0).index)
        frame = s.frame_at(10.0)
        ref = w.render_frame(round(10.0 * 30) / 30.0)
        assert frame.shape == (48, 64, 3)
        assert np.abs(frame.astype(int) - ref).mean() < 12  # lossy codec, same picture


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", "synth", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_writes_a_readable_session(tmp_path):
    out = tmp_path / "cli"
    r = _cli("--out", str(out), "--actions", "6", "--minutes", "0.5", "--seed", "2", "--no-video")
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and "6 actions" in r.stdout
    with open_session(out) as s:
        assert not s.has_video and sorted(s.imu) == sorted(PLACEMENTS)
        assert abs(s.duration_s - 30.0) < 0.5
    r = _cli("--out", str(out), "--actions", "6", "--minutes", "0.5", "--size", "32x24", "--force")
    assert r.returncode == 0, r.stderr
    with open_session(out) as s:
        assert s.has_video and (s.video.width, s.video.height) == (32, 24)


@pytest.mark.parametrize(
    "args",
    [
        ["--actions", "0"],
        ["--minutes", "0"],
        ["--minutes", "-1"],
        ["--size", "big"],
        ["--actions", "9", "--minutes", "0.1"],
        ["--actions", "x"],
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, args):
    r = _cli("--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_cli_refuses_a_non_empty_out_dir_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = _cli("--out", str(tmp_path), "--minutes", "0.5", "--actions", "2", "--no-video")
    assert r.returncode == 2 and "--force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
