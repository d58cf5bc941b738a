"""``--record DIR --label-keys`` on a real pseudo-terminal: the CLI runs the live synthetic rig
in a subprocess whose stdin is the pty's slave; the test types keys into the master."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from evimae_stream.sessions import open_session
from evimae_stream.sessions.labels import recovered_segments
from tests.helpers.paths import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")

RIG = ["--imu-ports", "synthetic", "synthetic", "synthetic", "synthetic", "--no-camera"]


class Terminal:
    """The CLI in a subprocess on a pty; ``read_until`` collects what it wrote there."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.before = termios.tcgetattr(slave)
        self.slave = slave
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evimae_stream.cli", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
        self.text = ""

    def read_until(self, needle: str, timeout: float = 120.0) -> str:
        end = time.monotonic() + timeout
        while needle not in self.text:
            left = end - time.monotonic()
            assert left > 0 and self.proc.poll() is None, f"no {needle!r} in:\n{self.text}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                self.text += os.read(self.master, 4096).decode("utf-8", "replace")
        return self.text

    def type(self, key: str) -> None:
        os.write(self.master, key.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def terminal():
    made: list[Terminal] = []
    yield lambda *args: made.append(Terminal(*args)) or made[-1]
    for t in made:
        t.close()


def test_label_keys_record_labels_and_restore_the_terminal(terminal, tmp_path):
    rec, jsonl = tmp_path / "rec", tmp_path / "out.jsonl"
    term = terminal(*RIG, "--record", str(rec), "--label-keys", "--labels", "walk,stir",
                    "--jsonl", str(jsonl), "--duration", "9", "--backend", "eager")  # fmt: skip
    term.read_until("keys: 1 walk · 2 stir · 0 idle")
    assert not termios.tcgetattr(term.slave)[3] & termios.ICANON  # single keys: cbreak mode
    term.read_until("[")  # the status line: the run is under way
    term.type("1")
    term.read_until("label: walk started")
    time.sleep(1.5)
    term.type("2")  # another action ends walk
    term.read_until("label: stir started")
    time.sleep(1.0)
    term.type("0")
    term.read_until("label: stir ended")
    term.type("x")
    term.read_until("key 'x' is not bound")
    assert term.proc.wait(120) == 0, term.text
    assert termios.tcgetattr(term.slave) == term.before  # restored on exit
    with open_session(rec) as s:
        labels = s.labels
        assert [seg.label for seg in labels] == ["walk", "stir"]
        assert labels[0].end_s == labels[1].start_s
        assert 1.2 < labels[0].end_s - labels[0].start_s < 4.0
        assert 0 < labels[0].start_s < s.duration_s
        assert s.meta["label_names"] == ["walk", "stir"]
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    marks = [(e["event"], e["label"]) for e in events if e["type"] == "label"]
    assert marks == [("start", "walk"), ("end", "walk"), ("start", "stir"), ("end", "stir")]
    starts = [e["t_s"] for e in events if e["type"] == "label" and e["event"] == "start"]
    assert starts == pytest.approx([seg.start_s for seg in labels], abs=1e-5)  # one clock


def test_sigterm_restores_the_terminal_and_closes_the_open_segment(terminal, tmp_path):
    rec = tmp_path / "rec"
    term = terminal(*RIG, "--record", str(rec), "--label-keys", "--labels", "walk,stir",
                    "--backend", "eager", "--quiet")  # fmt: skip
    term.read_until("keys:")
    term.type("2")
    term.read_until("label: stir started")
    time.sleep(0.5)
    term.proc.send_signal(signal.SIGTERM)
    term.proc.wait(60)
    assert termios.tcgetattr(term.slave) == term.before
    with open_session(rec) as s:
        assert [seg.label for seg in s.labels] == ["stir"]
        assert s.recovery == []  # closed cleanly: nothing to recover


def test_sigkill_during_a_labelled_recording_loses_no_closed_segment(terminal, tmp_path):
    rec = tmp_path / "rec"
    term = terminal(*RIG, "--record", str(rec), "--label-keys", "--labels", "walk,stir",
                    "--backend", "eager", "--quiet")  # fmt: skip
    term.read_until("keys:")
    term.type("1")
    term.read_until("label: walk started")
    time.sleep(1.0)
    term.type("2")
    term.read_until("label: stir started")
    time.sleep(1.5)
    os.killpg(term.proc.pid, signal.SIGKILL)
    assert term.proc.wait(30) == -signal.SIGKILL
    with open_session(rec) as s:
        walk, stir = s.labels
        assert walk.label == "walk" and walk.end_s == stir.start_s
        assert stir.label == "stir" and stir.end_s == pytest.approx(s.duration_s)
        assert stir.end_s - stir.start_s > 0.5
        assert any("was open when the recording stopped" in line for line in s.recovery)
    assert recovered_segments(rec) == [stir]


def test_label_keys_without_a_terminal_is_one_clear_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", *RIG, "--record", str(tmp_path / "rec"),
         "--label-keys"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--label-keys reads single keys from a terminal" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "rec").exists()
