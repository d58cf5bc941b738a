"""The main command when its process or its outputs are in trouble (issue 16, items 13, 18, 19),
in real subprocesses: real signals, a real full disk, real concurrent runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.runtime import make_artifact


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "evimae_stream.cli", *map(str, args)]


def _events(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_artifact(tmp_path_factory.mktemp("faults") / "model")


def _live(model, out: Path, record: Path | None = None, duration: float = 120) -> subprocess.Popen:
    rec = ["--record", record] if record is not None else []
    return subprocess.Popen(
        _cli("--imu-ports", "synthetic", "synthetic", "synthetic", "synthetic", "--no-camera",
             "--model", model, "--backend", "eager", "--duration", duration, "--jsonl", out, *rec),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_predictions(proc: subprocess.Popen, out: Path, n: int = 2) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(1 for e in _events(out) if e.get("label")) >= n:
            return
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no predictions before the deadline: {proc.communicate()[1][-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_sigterm_and_sighup_end_a_live_run_like_sigint(model, tmp_path, sig):
    out, rec = tmp_path / "live.jsonl", tmp_path / "rec"
    proc = _live(model, out, rec)
    try:
        _wait_for_predictions(proc, out)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    ev = _events(out)
    assert ev[-1]["type"] == "end", ev[-1]
    assert "windows" in err and "latency ms" in err, err  # the summary
    info = json.loads((rec / "session.json").read_text())
    assert info["complete"] is True and sum(info["counts"]["imu"].values()) > 0


def _one_line_refusal(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_second_run_on_the_same_jsonl_or_record_dir_is_refused(model, tmp_path):
    out, rec = tmp_path / "a.jsonl", tmp_path / "rec"
    first = _live(model, out, rec)
    try:
        _wait_for_predictions(first, out)
        same_jsonl = subprocess.run(
            _cli("--imu-ports", "synthetic", "--no-camera", "--model", model, "--duration", "3",
                 "--jsonl", out), capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        _one_line_refusal(same_jsonl, f"--jsonl {out}", "another run is writing it")
        same_dir = subprocess.run(
            _cli("--imu-ports", "synthetic", "--no-camera", "--model", model, "--duration", "3",
                 "--jsonl", tmp_path / "b.jsonl", "--record", rec),
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        _one_line_refusal(same_dir, f"--record {rec}")
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    lines = out.read_text().splitlines()
    ev = [json.loads(line) for line in lines]  # every line whole: nothing torn
    assert ev[0]["type"] == "start" and ev[-1]["type"] == "end"
    assert json.loads((rec / "session.json").read_text())["complete"] is True


@pytest.fixture()
def tiny_disk(tmp_path):
    """A real 64 KiB tmpfs (a full disk within seconds of recording); skipped where mounting
    is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_under_record_stops_the_recording_not_the_run(model, tmp_path, tiny_disk):
    out, rec = tmp_path / "live.jsonl", tiny_disk / "rec"
    duration = 12.0
    proc = _live(model, out, rec, duration=duration)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    failures = [x for x in err.splitlines() if f"--record {rec}: recording stopped" in x]
    assert failures and "No space left on device" in failures[0], err
    ev = _events(out)
    assert ev[-1]["type"] == "end"
    preds = [e for e in ev if e["type"] == "prediction"]
    assert preds[-1]["t_s"] >= duration - 1.0  # recognition went on to the end
    assert sum(1 for e in preds if e.get("label")) >= 10
