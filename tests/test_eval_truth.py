"""One ground truth for a window: training's labels, ``--eval`` and ``evaluate_artifact.py`` use
:func:`evimae_stream.truth.window_truth`, and on the same windows of the same session the runtime's
``--eval`` and ``training/evaluate_artifact.py`` give the same accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evimae_stream.commands import run as run_command
from evimae_stream.sessions import open_session
from evimae_stream.truth import window_truth
from evimae_stream.types import Segment
from evimae_stream.window import WindowGeometry
from tests.helpers.cli import cli, events
from training.evaluate_artifact import evaluate_sessions
from training.windows import cut_session, make_label_fn

MODEL, SESSION = run_command.DEMO_MODEL, run_command.DEMO_SESSION
HAS_ASSETS = (MODEL / "model.json").is_file() and (SESSION / "session.json").is_file()


def test_window_truth_reads_the_centre_not_the_largest_overlap() -> None:
    # window (0, 2]: "a" and "c" cover 0.9 s each, "b" only 0.2 s but holds the centre 1.0
    labels = [Segment(0, 0.9, "a"), Segment(0.9, 1.1, "b"), Segment(1.1, 2.0, "c")]
    assert window_truth(labels, 2.0, 2.0) == "b"
    assert window_truth(labels, 2.5, 2.0) == "c"  # centre 1.5
    assert window_truth([Segment(0, 1, "a"), Segment(1.5, 3, "b")], 2.25, 2.0) is None  # gap


@pytest.mark.skipif(not HAS_ASSETS, reason="bundled demo assets not installed")
def test_training_labels_each_window_with_the_eval_truth() -> None:
    spec = WindowGeometry(2.0, 50.0, 8, 2.0)
    with open_session(SESSION) as s:
        items, _ = cut_session(s, spec, 0.25, make_label_fn({}, None), need_imu=True)
        labels = s.labels
    assert len(items) > 250
    for it in items:
        assert it.labels == (window_truth(labels, it.t_ref, spec.window_s),)


@pytest.mark.skipif(not HAS_ASSETS, reason="bundled demo assets not installed")
def test_eval_and_evaluate_artifact_agree_on_the_same_windows(tmp_path: Path) -> None:
    jsonl = tmp_path / "run.jsonl"
    proc = cli(
        "--replay", SESSION, "--model", MODEL, "--speed", "max", "--backend", "eager",
        "--duration", 20, "--stride", 0.5, "--jsonl", jsonl, "--eval", "--eval-out",
        tmp_path / "ev", "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ev" / f"{SESSION.name}.eval.json").read_text())
    scored = [p for p in events(jsonl)[1:-1] if p["label"] is not None and p["truth"] is not None]
    # --eval scores exactly these windows
    assert report["scored_windows"] == len(scored)
    assert report["accuracy"] == pytest.approx(
        sum(p["label"] == p["truth"] for p in scored) / len(scored), abs=1e-4
    )
    # the same windows, cut by training's code: all but the first, whose IMU span starts before
    # the session (the runtime scores it video-only). Cut on the raw arrival stamps instead of
    # the rings' timeline, the window ending at 18.5 s is predicted differently.
    inside = [p for p in scored if p["t_ref_s"] >= 2.0]
    assert len(inside) == len(scored) - 1
    assert {p["mode"] for p in inside} == {"multimodal"}
    ours = evaluate_sessions(MODEL, [SESSION], 0.5, ends=[[p["t_ref_s"] for p in inside]])
    mm = ours["multimodal"]
    assert mm["windows"] == len(inside)
    runtime_acc = sum(p["label"] == p["truth"] for p in inside) / len(inside)
    assert mm["accuracy"] == pytest.approx(runtime_acc, abs=1e-9)
    # and window for window: the same (truth, prediction) pairs
    classes = json.loads((MODEL / "model.json").read_text())["classes"]
    confusion = [[0] * len(classes) for _ in classes]
    for p in inside:
        confusion[classes.index(p["truth"])][classes.index(p["label"])] += 1
    assert mm["confusion"] == confusion
