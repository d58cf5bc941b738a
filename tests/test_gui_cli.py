"""`evimae-stream --gui`: the real command in a subprocess, offscreen, with a screenshot."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.helpers.runtime import make_artifact, make_session

pytestmark = pytest.mark.gui


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
def test_gui_replay_runs_the_pipeline_and_saves_a_screenshot(tmp_path) -> None:
    art = make_artifact(tmp_path / "model")
    session = make_session(tmp_path / "session", seconds=12.0)
    png = tmp_path / "window.png"
    proc = _run("--gui", "--model", str(art), "--replay", str(session), "--speed", "2",
                "--backend", "eager", "--screenshot", str(png), "--duration", "5")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 400 and img.shape[1] > 600
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200  # video, plots, text: not blank


def test_screenshot_needs_gui(tmp_path) -> None:
    proc = _run("--screenshot", str(tmp_path / "x.png"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--gui" in lines[0] and "Traceback" not in proc.stderr


def test_gui_with_a_broken_model_exits_2_with_one_line(tmp_path) -> None:
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"not a checkpoint")
    proc = _run("--gui", "--model", str(ckpt), "--dataset", "wear")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
