"""The embedded demo (no sensors, no --replay): the bundled session through the bundled model.

The bundled assets are made by the training engineer; until they land, the demo path is tested
with a test-made artifact and session put in their place, and the installed-package and accuracy
tests skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from evimae_stream.commands import run as run_command
from tests.helpers.runtime import make_artifact, make_session

HAS_ASSETS = (run_command.DEMO_MODEL / "model.json").is_file() and (
    run_command.DEMO_SESSION / "session.json"
).is_file()


def test_demo_runs_the_bundled_session_to_the_end(tmp_path, monkeypatch, capsys):
    from evimae_stream.cli import main

    monkeypatch.setattr(run_command, "DEMO_MODEL", make_artifact(tmp_path / "demo_model"))
    monkeypatch.setattr(
        run_command, "DEMO_SESSION", make_session(tmp_path / "demo_session", seconds=6.0)
    )
    out = tmp_path / "demo.jsonl"
    assert main(["--jsonl", str(out), "--stride", "1", "--backend", "eager"]) == 0
    ev = [json.loads(x) for x in out.read_text().splitlines()]
    preds = [e for e in ev if e["type"] == "prediction"]
    assert [p["window"] for p in preds] == [1, 2, 3, 4, 5, 6]  # to the end of the 6 s session
    assert all("stages_ms" not in p for p in preds)  # max speed: virtual clock
    assert any(p["label"] for p in preds)
    err = capsys.readouterr().err
    assert "windows 6" in err and "backend eager/fp32" in err


def test_demo_without_bundled_assets_says_so(tmp_path, monkeypatch, capsys):
    from evimae_stream.cli import main

    monkeypatch.setattr(run_command, "DEMO_MODEL", tmp_path / "missing_model")
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled demo model is not installed" in err[0]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ASSETS, reason="bundled demo model/session not built yet")
def test_installed_demo_exits_zero(tmp_path):
    exe = shutil.which("evimae-stream")
    assert exe, "the console script is not installed"
    proc = subprocess.run(
        [exe, "--quiet", "--jsonl", str(tmp_path / "d.jsonl")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d.jsonl").read_text().count('"type": "prediction"') > 10


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ASSETS, reason="bundled demo model not built yet")
def test_demo_model_recognises_a_fresh_synthetic_session(tmp_path):
    from evimae_stream.synthetic import generate_session

    generate_session(tmp_path / "fresh", actions=6, minutes=1.5, seed=20240)
    proc = subprocess.run(
        ["evimae-stream", "--replay", str(tmp_path / "fresh"), "--speed", "max", "--eval",
         "--eval-out", str(tmp_path / "ev"), "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ev" / "fresh.eval.json").read_text())
    assert report["accuracy"] >= 0.9, report
