"""``interval`` training and ``--segments``: train.py writes an artifact that carries the
interval head (model.json records its context and stride; models without one load as before);
``--replay --segments --eval`` scores the head against the same run's merged windows, in the
eval JSON, the table and the timeline PNG; ``--segments`` in a paced (live) run emits segment
events, open then closed, from a feature ring whose size does not grow with the run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import pytest
import yaml

from evimae_stream.artifact import load_artifact, read_meta
from tests.helpers.cli import cli, events
from tests.helpers.runtime import make_artifact, make_session
from tests.helpers.training import run_train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A recogniser, two labelled sessions (train, val/test) and a head trained in seconds."""
    base = tmp_path_factory.mktemp("segments")
    model = make_artifact(base / "model")
    train = make_session(base / "train", seconds=24.0, seed=21)
    test = make_session(base / "test", seconds=16.0, seed=22)
    recipe = {
        "objective": "interval",
        "run_dir": str(base / "run"),
        "interval": {"base_model": str(model), "context_s": 8.0, "dim": 16, "heads": 2,
                     "layers": 1, "train_queries": 16, "crops_per_epoch": 32,
                     "min_score": 0.0, "open_score": 0.0},
        "data": {"sources": [
            {"kind": "session", "path": str(train)},
            {"kind": "session", "path": str(test), "split": "val"},
            {"kind": "session", "path": str(test), "split": "test"},
        ]},
        "train": {"epochs": 3, "batch_size": 8, "optimizer": "adamw", "lr": 1e-3,
                  "schedule": "constant", "num_threads": 1},
    }  # fmt: skip
    (base / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    proc = run_train(["--config", str(base / "recipe.yaml")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"base": base, "model": model, "test": test, "art": base / "run" / "model",
            "stdout": proc.stdout}  # fmt: skip


def test_the_artifact_carries_the_interval_head(trained) -> None:
    art = trained["art"]
    assert "segment mAP" in trained["stdout"]
    _meta, doc = read_meta(art)
    iv = doc["interval"]
    assert iv["context_s"] == 8.0 and iv["stride_s"] == 0.5
    assert iv["config"]["dim"] == 16 and iv["classes"]
    assert (art / "interval.safetensors").is_file() and len(iv["weights_sha256"]) == 64
    test = iv["metrics"]["test"]
    assert set(test["interval"]["per_tiou"]) == {"0.3", "0.4", "0.5", "0.6", "0.7"}
    assert test["merged_windows"] is not None and 0 <= test["recognition_accuracy"] <= 1
    _model, meta2 = load_artifact(art)  # the recogniser itself is the base model, unchanged
    assert meta2.classes == read_meta(trained["model"])[0].classes
    # an artifact without the section reads as before
    assert "interval" not in json.loads((trained["model"] / "model.json").read_text())
    assert read_meta(trained["model"])[0].interval is None


def _cli_here(capsys, *args):
    """The CLI in this process (bad-input cases: no interpreter start-up)."""
    from evimae_stream.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_a_bad_interval_section_is_one_line(trained, tmp_path, capsys) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained["art"], bad)
    doc = json.loads((bad / "model.json").read_text())
    doc["interval"]["context_s"] = 0.1
    (bad / "model.json").write_text(json.dumps(doc))
    code, err = _cli_here(capsys, "--replay", trained["test"], "--model", bad, "--segments")
    assert code == 2 and "interval" in err and "Traceback" not in err
    code, err = _cli_here(capsys, "--replay", trained["test"], "--model", trained["model"],
                          "--segments")  # fmt: skip
    assert code == 2 and "no interval head" in err
    code, err = _cli_here(capsys, "--replay", trained["test"], "--model", trained["art"],
                          "--segments", "--stride", "1")  # fmt: skip
    assert code == 2 and "--stride 0.5" in err


def test_replay_segments_eval_scores_head_and_merged_windows(trained, tmp_path) -> None:
    out, jsonl = tmp_path / "eval", tmp_path / "run.jsonl"
    proc = cli("--replay", trained["test"], "--model", trained["art"], "--speed", "max",
               "--segments", "--eval", "--eval-out", out, "--jsonl", jsonl, "--backend", "eager",
               "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "interval recognition acc" in proc.stdout and "segment mAP (mean)" in proc.stdout
    report = json.loads((out / "test.eval.json").read_text())
    seg = report["segments"]
    # the baseline is this run's own merged windows: the same numbers as --eval's segment mAP
    assert seg["merged_windows"]["segment_map"] == report["segment_map"]
    assert set(seg["interval"]["segment_map"]["per_tiou"]) == {"0.3", "0.4", "0.5", "0.6", "0.7"}
    assert seg["interval"]["segments"]
    assert seg["windows"] == report["windows"] - report["no_prediction"]  # every inferred one
    assert seg["live"]["feature_ring_bytes"] > 0
    img = cv2.imread(str(out / "test.timeline.png"))
    plain_out = tmp_path / "plain"
    assert cli("--replay", trained["test"], "--model", trained["model"], "--speed", "max",
               "--eval", "--eval-out", plain_out, "--quiet").returncode == 0  # fmt: skip
    plain = cv2.imread(str(plain_out / "test.timeline.png"))
    assert img.shape[0] == plain.shape[0] + 50  # the segment lane
    evs = events(jsonl)
    assert next(e["type"] for e in evs) == "start" and evs[-1]["type"] == "end"
    _check_segment_events([e for e in evs if e["type"] == "segment"])


def _check_segment_events(segs: list[dict]) -> None:
    assert segs, "no segment events"
    by_id: dict[int, list[dict]] = {}
    for e in segs:
        by_id.setdefault(e["id"], []).append(e)
    for evs in by_id.values():
        assert [e["open"] for e in evs] == [True] * (len(evs) - 1) + [False]
        assert len({e["label"] for e in evs}) == 1
        assert all(e["end_s"] > e["start_s"] for e in evs)
        ends = [e["end_s"] for e in evs]
        assert ends == sorted(ends)
    closed = [e for e in segs if not e["open"]]
    assert all(a["end_s"] <= b["start_s"] + 1e-6 for a, b in itertools.pairwise(closed))


def test_live_segments_from_a_bounded_ring(trained, tmp_path) -> None:
    long = make_session(tmp_path / "long", seconds=30.0, seed=23)
    jsonl = tmp_path / "live.jsonl"
    proc = cli("--replay", long, "--model", trained["art"], "--speed", "4", "--segments",
               "--jsonl", jsonl, "--backend", "eager", "--quiet", timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evs = events(jsonl)
    segs = [e for e in evs if e["type"] == "segment"]
    _check_segment_events(segs)
    assert all(e["latency_ms"] is not None and e["interval_ms"] > 0 for e in segs)
    preds = [e for e in evs if e["type"] == "prediction" and e["label"] is not None]
    assert len(preds) >= 10  # a loaded machine skips windows (latest wins); the rest are scored
    # the feature ring holds one context whatever the run's length: same bytes for 16 and 30 s
    assert _summary_ring(trained, long) == _summary_ring(trained, trained["test"]) > 0


def _summary_ring(trained, session) -> int:
    """The feature ring's bytes after a max-speed --segments run of ``session``."""
    from evimae_stream.commands.run_segments import load_head, segment_hooks
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.run import Composer
    from evimae_stream.sessions import open_session

    loaded = _loaded(trained["art"])
    head = load_head(trained["art"], read_meta(trained["art"])[0])
    hooks, backend = segment_hooks(head, loaded)
    composer = Composer(loaded, RuntimeConfig(backend="eager"), hooks, backend=backend)
    with open_session(session) as s:
        result = composer.replay(s, None)
    return result.summary["segments"]["feature_ring_bytes"]


def _loaded(art: Path):
    from evimae_stream.commands.features import load_for_features

    return load_for_features(art)
