"""A session's labels as they are recorded: the crash-safe log (a real SIGKILL), the recovery
of the segment it left open, the label state machine on the run's clock, and ``--labels``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from evimae_stream.errors import InputError
from evimae_stream.runtime.labelling import Labeller, parse_label_names
from evimae_stream.sessions import open_session
from evimae_stream.sessions.labels import (
    LABELS_OPEN,
    LabelLog,
    recovered_segments,
)
from evimae_stream.types import Segment
from tests.helpers.paths import REPO
from tests.helpers.sessions import write_imu_recording


def test_label_log_is_what_the_session_reader_reads(tmp_path):
    write_imu_recording(tmp_path / "s")
    log = LabelLog(tmp_path / "s")
    log.start(1.0, "walk")
    log.start(3.5, "stir")  # ends walk at 3.5
    assert (tmp_path / "s" / LABELS_OPEN).exists()
    log.end(6.25)
    assert not (tmp_path / "s" / LABELS_OPEN).exists()
    with open_session(tmp_path / "s") as s:
        assert s.labels == [Segment(1.0, 3.5, "walk"), Segment(3.5, 6.25, "stir")]
        assert s.recovery == []


def test_sigkill_keeps_closed_segments_and_recovery_closes_the_open_one_at_the_last_sample(
    tmp_path,
):
    """A real process labels into a recording and is SIGKILLed with a segment open."""
    path = tmp_path / "s"
    code = textwrap.dedent(f"""
        import os, sys, numpy as np
        from evimae_stream.sessions import ImuSpec, SessionWriter
        from evimae_stream.sessions.labels import LabelLog
        w = SessionWriter({str(path)!r}, imu={{"left_arm": ImuSpec(50.0)}}, t0_ns=0,
                          flush_interval_s=0.05)
        log = LabelLog({str(path)!r})
        for i in range(400):  # 8 s of samples
            w.add_imu("left_arm", i * 20_000_000 + 1, [0.0, 0.0, 1.0])
            if i == 50: log.start(1.0, "walk")
            if i == 150: log.start(3.0, "stir")
            if i == 250: log.start(5.0, "walk")
        w.flush()
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with open_session(path) as s:
        last = s.duration_s
        assert last == pytest.approx(399 * 0.02, abs=1e-6)
        assert s.labels[:2] == [Segment(1.0, 3.0, "walk"), Segment(3.0, 5.0, "stir")]
        assert s.labels[2] == Segment(5.0, last, "walk")
        assert any("was open when the recording stopped" in line for line in s.recovery)
    assert recovered_segments(path) == [Segment(5.0, last, "walk")]
    assert not (path / LABELS_OPEN).exists()
    with open_session(path) as s:  # recovered once, not again
        assert len(s.labels) == 3


def test_labeller_toggles_and_stamps_on_the_run_clock(tmp_path):
    now = [10_000_000_000]
    events = []

    class Sink:
        def write(self, obj):
            events.append(obj)

    lab = Labeller(["walk", "stir"], lambda: now[0], origin_ns=9_000_000_000, sinks=[Sink()])
    lab.record_to(tmp_path / "rec", t0_ns=8_000_000_000)
    lab.key("1")  # walk at run 1 s, session 2 s
    now[0] += 2_000_000_000
    lab.key("1")  # again: ends walk
    now[0] += 1_000_000_000
    lab.key("2")
    now[0] += 500_000_000
    lab.key("1")  # another: ends stir, starts walk
    now[0] += 500_000_000
    lab.key("0")
    assert not lab.key("7") and not lab.key("x")
    assert lab.segments == [Segment(1.0, 3.0, "walk"), Segment(4.0, 4.5, "stir"),
                            Segment(4.5, 5.0, "walk")]  # fmt: skip
    assert [(e["event"], e["label"], e["t_s"]) for e in events] == [
        ("start", "walk", 1.0), ("end", "walk", 3.0), ("start", "stir", 4.0),
        ("end", "stir", 4.5), ("start", "walk", 4.5), ("end", "walk", 5.0),
    ]  # fmt: skip
    text = (tmp_path / "rec" / "labels.csv").read_text().splitlines()
    assert text == ["start_s,end_s,label", "2.0,4.0,walk", "5.0,5.5,stir", "5.5,6.0,walk"]


def test_label_names_from_text_a_names_file_and_a_class_indices_csv(tmp_path):
    assert parse_label_names("walk, stir ,jump") == ["walk", "stir", "jump"]
    (tmp_path / "n.txt").write_text("walk\n\nsit down\n")
    assert parse_label_names(str(tmp_path / "n.txt")) == ["walk", "sit down"]
    (tmp_path / "c.csv").write_text("index,mid,display_name\n0,/m/0,walk\n1,/m/1,run\n")
    assert parse_label_names(str(tmp_path / "c.csv")) == ["walk", "run"]
    with pytest.raises(InputError, match="twice"):
        parse_label_names("a,b,a")
    with pytest.raises(InputError, match="no action names"):
        parse_label_names(" , ")
