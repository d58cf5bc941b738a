"""Issue 16, first contact: what a new user sees on the first runs (the README's commands, the
demo's output, the precision rule, the recipes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evimae_stream.device import cpu_has_native_bf16
from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO
from training.config import load_config

RECIPES = sorted((REPO / "configs" / "train").glob("*.yaml"))
ASSETS = REPO / "evimae_stream" / "assets"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipes_write_under_runs_never_over_the_bundled_model(recipe: Path) -> None:
    """Item 6: following the README's training command writes under runs/, never over
    evimae_stream/assets/ (only training/make_demo_assets.py writes there)."""
    out = load_config(recipe).output_dir
    assert not out.is_absolute() and out.parts[0] == "runs", out
    assert ASSETS not in (REPO / out).resolve().parents


@pytest.mark.skipif(cpu_has_native_bf16(), reason="this CPU has native bf16")
def test_bf16_on_a_cpu_without_native_bf16_warns_before_the_run() -> None:
    """Item 9: bf16 on a CPU without native bf16 (no AVX512-BF16, no AMX) is emulated, slower
    than fp32; the run says so (one line on stderr, like the fp16-without-CUDA refusal) and
    still runs."""
    res = cli("--precision", "bf16", "--duration", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no native bf16" in warnings[0] and "fp32" in warnings[0]


def _setup_commands() -> list[str]:
    """The shell commands of the README's Set-up section, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in section.split("```bash\n")[1:]]


def test_readme_documents_a_cpu_only_install_next_to_the_two_setup_commands() -> None:
    """Item 11: a CPU-only install (PyTorch's CPU wheel index) sits next to the two set-up
    commands, which stay as they are."""
    blocks = [b.split("```", 1)[0].strip() for b in _setup_commands()]
    assert blocks[:2] == [
        "python -m pip install -e . && evimae-stream",
        'python -m pip install -e ".[dev]" && python -m pytest -q',
    ]
    cpu = [b for b in blocks[2:] if "download.pytorch.org/whl/cpu" in b]
    assert cpu == ["python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"]


def _merged(labels: list) -> list:
    """Consecutive equal labels merged: [(label, count), ...]."""
    runs: list = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return [tuple(r) for r in runs]


def test_demo_prints_what_was_recognised_and_explains_its_numbers(tmp_path: Path) -> None:
    """Item 7: the demo shows what it recognised (a compact timeline of the actions, and the
    accuracy of the labelled session, the same as --eval's) and says what its numbers mean."""
    jsonl = tmp_path / "demo.jsonl"
    res = cli("--duration", "20", "--eval", "--eval-out", tmp_path, "--jsonl", jsonl)
    assert res.returncode == 0, res.stderr
    err = res.stderr.splitlines()
    preds = [e for e in events(jsonl) if e["type"] == "prediction"]
    start = err.index("recognised (session seconds, consecutive windows with one label merged):")
    shown = []
    for line in err[start + 1 :]:
        if not line.startswith("  ") or "…" in line:
            break
        _times, _, rest = line.strip().partition(" s  ")
        name, _, count = rest.rpartition("  (")
        label = None if name.strip() == "(no prediction)" else name.strip()
        shown.append((label, int(count.split()[0])))
    assert shown == _merged([p["label"] for p in preds])
    report = json.loads((tmp_path / "demo_session.eval.json").read_text())
    (acc,) = [line for line in err if line.startswith("accuracy ")]
    assert acc.startswith(f"accuracy {report['accuracy']:.3f}: ")
    assert f"of {report['scored_windows']} labelled windows right" in acc
    text = res.stderr
    assert "modes multimodal" in text and "(video and IMUs)" in text
    assert "none 3 (no prediction)" in text or "none" not in report["summary"]["modes"]
    assert "virtual clock: --speed max stops session time while the model works" in text
    assert "stages: wall time a window spent in each step of the recogniser" in text


def test_help_says_no_arguments_runs_the_demo_and_explains_backend_and_precision() -> None:
    """Item 10: ``--help`` says what no arguments does, and --backend/--precision/--duration
    say what they mean."""
    res = cli("--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "With no arguments it runs the demo" in text
    assert "how the model runs: auto (default) tries each one" in text
    assert "fp16 needs a CUDA GPU" in text
    assert "bf16 pays off on CPUs with native bf16 (AVX512-BF16, AMX)" in text
    assert "int8 (CPU): int8 transformer GEMMs" in text and "--threads N" in text
    assert "(of the session for a replay, whatever its --speed)" in text


def test_synth_writes_no_carriage_return_progress_to_a_pipe(tmp_path: Path) -> None:
    """Item 10: ``synth`` into a pipe (a log file, CI) writes no ``\\r`` progress bar, for a
    session long enough to have one on a terminal."""
    res = cli(
        "synth",
        "--out",
        tmp_path / "s",
        "--minutes",
        "0.6",
        "--actions",
        "2",
        "--no-video",
        "--size",
        "32x32",
    )
    assert res.returncode == 0, res.stderr
    assert "%|" not in res.stderr  # the bar (text mode reads its \r as a line end)
    assert "wrote synthetic session" in res.stdout


@pytest.mark.gui
def test_gui_duration_counts_session_seconds_of_a_replay(tmp_path: Path, qtbot) -> None:
    """Item 10: ``--gui --duration S`` on a replay stops after S session seconds, as the CLI
    does (at 4x: a quarter of S on the wall clock), not after S wall seconds."""
    import time

    from evimae_stream.synthetic import generate_session
    from gui.app import run_gui
    from gui.demo import replay_source

    generate_session(tmp_path / "s", actions=2, minutes=0.3, seed=3, size=(64, 48))
    src = replay_source(tmp_path / "s", speed=4.0)
    t0 = time.monotonic()
    assert run_gui(src, duration=3.0) == 0
    wall = time.monotonic() - t0
    assert src.status().position_s >= 3.0
    assert wall < 2.9, wall  # 3 wall seconds before


def test_status_line_stays_one_terminal_line_for_a_long_no_data_reason() -> None:
    """Item 10: the "no usable sensor data" reason of five streams (~300 characters) is cut to
    one line of at most TerminalLine.WIDTH characters, ending in an ellipsis."""
    import io

    from evimae_stream.runtime.events import Prediction
    from evimae_stream.runtime.sinks import TerminalLine

    reason = (
        "no usable sensor data ("
        + "; ".join(
            f"{s}: window starts 503.4 ms before the first sample"
            for s in ("left_arm", "right_arm", "left_leg", "right_leg", "camera")
        )
        + ")"
    )
    pred = Prediction(index=3, tick_ns=1_500_000_000, origin_ns=0, t_ref_ns=None, reason=reason)
    line = TerminalLine(io.StringIO()).text(pred)
    assert len(reason) > 250 and len(line) <= TerminalLine.WIDTH == 120
    assert line.startswith("[     1.5s] (no prediction: no usable sensor data (left_arm")
    assert line.endswith("…")
