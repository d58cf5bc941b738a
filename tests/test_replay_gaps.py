"""A recording with a long hole (a paused session, < the readers' 3600 s limit): ``--speed max``
jumps over it with one gap event and resumes on the same tick grid, instead of one empty
window per stride across the hole (issue 16 item 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evimae_stream.sessions import ImuSpec, SessionWriter
from evimae_stream.types import PLACEMENTS
from tests.helpers.cli import cli, events
from tests.helpers.runtime import make_artifact

RATE = 50.0
#: seconds of data before and after the hole, and the hole
PART_S, HOLE_S = 6.0, 1800.0
T0 = 7_000_000_000


def _write_gapped(path: Path) -> Path:
    """Four IMUs at 50 Hz: 6 s, nothing for 1800 s, 6 s more (arrival stamps only)."""
    n = int(PART_S * RATE)
    rng = np.random.default_rng(4)
    with SessionWriter(path, imu={p: ImuSpec(RATE) for p in PLACEMENTS}, t0_ns=T0) as w:
        for start_s in (0.0, PART_S + HOLE_S):
            t = T0 + np.round((start_s + np.arange(n) / RATE) * 1e9).astype(np.int64)
            for p in PLACEMENTS:
                w.add_imu_block(p, t, rng.normal(0.0, 0.3, (n, 3)).astype(np.float32))
        w.add_label(0.0, 2 * PART_S + HOLE_S, "walking")
    return path


@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    base = tmp_path_factory.mktemp("gaps")
    return make_artifact(base / "model", modes=("imu_only",)), _write_gapped(base / "session")


@pytest.mark.slow
def test_max_speed_replay_jumps_over_a_hole_with_one_gap_event(gapped, tmp_path):
    model, session = gapped
    out = tmp_path / "gap.jsonl"
    proc = cli("--replay", session, "--speed", "max", "--model", model, "--jsonl", out,
               "--backend", "eager", timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evs = events(out)
    preds = [e for e in evs if e["type"] == "prediction"]
    gaps = [e for e in evs if e["type"] == "gap"]
    # without the jump: one window every 0.5 s across 1812 s of session time (3624 lines)
    assert len(preds) < 60, len(preds)
    assert len(gaps) == 1
    gap = gaps[0]
    assert set(gap) == {"type", "from_window", "resume_window", "windows", "no_data_from_s",
                        "no_data_to_s", "skipped_s"}  # fmt: skip
    assert gap["no_data_from_s"] == pytest.approx(PART_S - 1 / RATE, abs=1e-6)
    assert gap["no_data_to_s"] == pytest.approx(PART_S + HOLE_S, abs=1e-6)
    assert gap["skipped_s"] == pytest.approx(HOLE_S + 1 / RATE, abs=1e-6)
    # windows run on one grid: k·0.5 s before the gap, the gap's windows absent, then the
    # first window whose end holds the first sample after the hole, and on to the end
    windows = [e["window"] for e in preds]
    assert windows == sorted(windows)
    before = [w for w in windows if w < gap["from_window"]]
    after = [w for w in windows if w >= gap["resume_window"]]
    assert before + after == windows
    assert before == list(range(1, len(before) + 1))
    assert after[0] == gap["resume_window"] == int(np.ceil((PART_S + HOLE_S) / 0.5))
    assert after == list(range(after[0], after[0] + len(after)))
    assert gap["windows"] == gap["resume_window"] - gap["from_window"]
    for e in preds:
        assert e["t_s"] == pytest.approx(e["window"] * 0.5)
    # recognition resumes after the hole: whole windows of new data give predictions again
    assert sum(e["label"] is not None for e in preds if e["window"] >= after[0] + 4) >= 6
    # one line for people says what was skipped, on its own line
    lines = [x for x in proc.stderr.splitlines() if "skipped a gap" in x]
    assert len(lines) == 1 and "1800.0 s" in lines[0], proc.stderr
    assert "gaps jumped over 1" in proc.stderr
    assert events(out)[-1]["type"] == "end"


@pytest.mark.slow
def test_a_short_dropout_keeps_its_windows(tmp_path):
    """Below the jump's threshold every window is cut, each saying why it has no prediction."""
    n = int(PART_S * RATE)
    path = tmp_path / "short"
    with SessionWriter(path, imu={p: ImuSpec(RATE) for p in PLACEMENTS}, t0_ns=T0) as w:
        for start_s in (0.0, PART_S + 4.0):
            t = T0 + np.round((start_s + np.arange(n) / RATE) * 1e9).astype(np.int64)
            for p in PLACEMENTS:
                w.add_imu_block(p, t, np.zeros((n, 3), np.float32))
    model = make_artifact(tmp_path / "model", modes=("imu_only",))
    out = tmp_path / "short.jsonl"
    proc = cli("--replay", path, "--speed", "max", "--model", model, "--jsonl", out,
               "--backend", "eager", "--quiet", timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evs = events(out)
    assert not [e for e in evs if e["type"] == "gap"]
    windows = [e["window"] for e in evs if e["type"] == "prediction"]
    assert windows == list(range(1, len(windows) + 1))
    assert len(windows) == int((2 * PART_S + 4.0 - 1 / RATE) / 0.5)
