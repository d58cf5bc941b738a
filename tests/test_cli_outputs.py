"""What the main command writes, driven in a subprocess: the JSON Lines schema as documented (code,
events.py and README agree), ``--jsonl -`` on stdout, the ``--speed max`` progress bar (on a
terminal only), latest-window-wins when inference lags, and ``synth`` making a session that
``--replay`` reads."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from evimae_stream.runtime import events as events_module
from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO
from tests.helpers.runtime import SYNTH_CLASSES, make_artifact, make_session

SESSION_S = 12.0
#: written only by live and paced runs (wall-clock measurements)
WALL_CLOCK_FIELDS = {"stages_ms", "time"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_outputs")
    return {
        "model": make_artifact(base / "model"),
        "session": make_session(base / "session", seconds=SESSION_S, seed=11),
    }


def documented_fields() -> dict[str, set[str]]:
    """Top-level fields per event type in the schema of :mod:`evimae_stream.runtime.events`
    (a field is a ``"name":`` that starts a line of the schema block)."""
    block = events_module.__doc__.split("::", 1)[1].split("\n\n")[1]
    out: dict[str, set[str]] = {}
    kind = ""
    for line in block.splitlines():
        m = re.match(r'\s*\{"type": "(\w+)"', line)
        if m:
            kind = m.group(1)
            out[kind] = {"type"}
        for name in re.findall(r'^\s*\{?"(\w+)"\s*:', line):
            out[kind].add(name)
    return out


def readme_fields() -> dict[str, set[str]]:
    """The same from README's JSON Lines section: the start/end sentence and the table."""
    text = (REPO / "README.md").read_text()
    section = text.split("### JSON Lines events", 1)[1].split("\n## ", 1)[0]
    out = {}
    for kind in ("start", "end", "label", "gap", "segment"):
        inner = re.search(rf"`{kind}` event \(([^)]*)\)", section.replace("\n", " ")).group(1)
        out[kind] = {"type", *re.findall(r"`(\w+)`", inner)}
    rows = [r for r in section.splitlines() if r.startswith("| `")]
    out["prediction"] = {"type"} | {
        n for r in rows for n in re.findall(r"`(\w+)`", r.split("|")[1])
    }
    return out


def test_schema_doc_readme_and_a_real_run_agree(data, tmp_path):
    doc = documented_fields()
    assert set(doc) == {"start", "prediction", "end", "label", "gap", "segment"}
    assert doc["label"] == {"type", "event", "label", "t_s"}
    assert doc["start"] >= {"model", "variant", "window_s", "source", "classes"}
    assert readme_fields() == doc
    out = tmp_path / "run.jsonl"
    proc = cli("--replay", data["session"], "--speed", "max", "--model", data["model"],
               "--jsonl", out, "--eval", "--eval-out", tmp_path / "ev", "--stride", "1",
               "--backend", "eager", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ev = events(out.read_text())
    start, preds, end = ev[0], ev[1:-1], ev[-1]
    # "vocabulary" is written only with --vocabulary (tests/test_language_align.py)
    assert set(start) == doc["start"] - {"vocabulary"} and set(end) == doc["end"]
    assert start["model"] == str(data["model"]) and start["variant"] == "evimae_tiny"
    assert start["window_s"] == 2.0 and start["source"] == str(data["session"])
    assert start["classes"] == SYNTH_CLASSES
    assert len(preds) == int(SESSION_S)
    for p in preds:  # --speed max with --eval: everything but the wall-clock fields
        assert set(p) == doc["prediction"] - WALL_CLOCK_FIELDS, p
        assert all(set(k) == {"label", "score"} for k in p["topk"])
        assert all(set(h) == {"up", "rate_hz", "drops", "missing"} for h in p["health"].values())
    assert any(p["truth"] for p in preds)


def test_jsonl_dash_writes_the_same_events_to_stdout(data, tmp_path):
    args = ["--replay", data["session"], "--speed", "max", "--model", data["model"],
            "--stride", "1", "--backend", "eager"]  # fmt: skip
    to_stdout = cli(*args, "--jsonl", "-")
    assert to_stdout.returncode == 0, to_stdout.stderr
    ev = events(to_stdout.stdout)  # every line is one JSON object
    assert ev[0]["type"] == "start" and ev[-1]["type"] == "end"
    assert [e["type"] for e in ev[1:-1]] == ["prediction"] * int(SESSION_S)
    # the summary still goes to stderr; nothing else shares stdout
    assert "windows 12" in to_stdout.stderr and '"type"' not in to_stdout.stderr
    to_file = cli(*args, "--jsonl", tmp_path / "f.jsonl", "--quiet")
    assert to_file.returncode == 0, to_file.stderr
    assert to_stdout.stdout == (tmp_path / "f.jsonl").read_text()
    # stderr is a pipe here: no progress bar in it
    assert "replay:" not in to_stdout.stderr and "win/s" not in to_stdout.stderr


def run_on_a_terminal(args: list, timeout: float = 240) -> tuple[int, str]:
    """The CLI with stderr on a pseudo-terminal of 100 columns (a fresh pty has 0, and tqdm
    draws nothing that narrow); (exit code, what it wrote there)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "evimae_stream.cli", *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd=REPO,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_max_speed_progress_bar_on_a_terminal(data, tmp_path):
    args = ["--replay", data["session"], "--speed", "max", "--model", data["model"],
            "--stride", "0.25", "--backend", "eager", "--jsonl", tmp_path / "p.jsonl"]  # fmt: skip
    code, tty = run_on_a_terminal(args)
    assert code == 0, tty
    bars = re.findall(r"replay:\s+(\d+)%\|[^|]*\|\s*(\d+)/(\d+) \[", tty)
    assert bars, tty
    assert {total for _, _, total in bars} == {"48"}  # 12 s at 0.25 s
    assert any(int(done) > 0 for _, done, _ in bars)  # it moved
    assert "windows 48" in tty  # the summary after it
    assert "\r" in tty.split("windows 48")[0]  # drawn in place
    code, quiet = run_on_a_terminal([*args, "--quiet"])
    assert code == 0 and quiet == "", quiet


def test_latest_window_wins_when_inference_lags(data, tmp_path):
    # a paced replay at 10x with a 10 ms stride: a tick every millisecond of wall time, less than
    # assembling and preprocessing one window takes, let alone a forward of this one-block model
    # (about 5 ms here), so windows must be skipped whatever the load, on any CPU
    out = tmp_path / "lag.jsonl"
    proc = cli("--replay", data["session"], "--speed", "10", "--stride", "0.01",
               "--model", data["model"], "--backend", "eager", "--jsonl", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ev = events(out.read_text())
    preds, end = ev[1:-1], ev[-1]
    assert end["skipped"] > 0 and end["windows"] == len(preds)
    assert f"skipped {end['skipped']})" in proc.stderr  # the summary
    windows = [p["window"] for p in preds]
    assert all(b > a for a, b in itertools.pairwise(windows))  # newest first, always
    assert any(b - a > 1 for a, b in itertools.pairwise(windows))  # indexes skip
    # every tick up to the last (always emitted) was either emitted or counted as skipped
    never_emitted = set(range(1, windows[-1] + 1)) - set(windows)
    assert end["skipped"] == len(never_emitted)
    # no emitted window's data is older than that of a window emitted before it
    t_refs = [p["t_ref_s"] for p in preds if p["t_ref_s"] is not None]
    assert t_refs == sorted(t_refs)
    labelled = [p for p in preds if p["label"]]
    assert len(labelled) >= 3
    # paced: the wall-clock fields are there (the schema's full prediction, bar --eval's truth)
    doc = documented_fields()["prediction"] - {"truth"}
    assert all(set(p) == doc for p in preds)
    # the status line carried the running latency percentiles
    assert re.search(r"\d+ ms p50/95/99 \d+/\d+/\d+ \|", proc.stderr), proc.stderr


def test_synth_writes_a_session_that_replay_reads(data, tmp_path):
    sess = tmp_path / "synth"
    proc = cli("synth", "--out", sess, "--minutes", "0.2", "--actions", "2", "--seed", "7",
               "--size", "96x72")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"wrote synthetic session to {sess}" in proc.stdout
    assert (sess / "session.json").is_file() and (sess / "labels.csv").is_file()
    out = tmp_path / "synth.jsonl"
    proc = cli("--replay", sess, "--speed", "max", "--model", data["model"], "--jsonl", out,
               "--eval", "--eval-out", tmp_path / "ev", "--stride", "1", "--backend", "eager",
               "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ev = events(out.read_text())
    preds = [e for e in ev if e["type"] == "prediction"]
    assert [p["window"] for p in preds] == list(range(1, len(preds) + 1))
    assert len(preds) >= 10  # 12 s of session at 1 s
    full = [p for p in preds if p["t_s"] >= 2.5]
    assert full and all(p["mode"] == "multimodal" for p in full)
    assert {p["truth"] for p in full} <= set(SYNTH_CLASSES) and any(p["truth"] for p in full)
    report = json.loads((tmp_path / "ev" / "synth.eval.json").read_text())
    assert report["scored_windows"] == sum(1 for p in preds if p["label"] and p["truth"])
