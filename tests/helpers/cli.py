"""Running the ``evimae-stream`` command in a subprocess, as a user would, and reading its JSONL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO

# The JSONL writes scores rounded to 5 decimals. The same window scored in another process (the
# live run, then its replay) need not be bit-identical in float32 (CPU GEMM kernels may sum in
# another order, e.g. by memory alignment), so a score near a rounding edge may land on the
# neighbouring last digit (seen in CI: 0.50465 live, 0.50466 replayed): one unit, plus slack.
SCORE_LAST_DIGIT = 1e-5 + 1e-9


def cli_command(*args) -> list[str]:
    """The command line of ``python -m evimae_stream.cli ARGS`` (for a run a test drives with
    :class:`subprocess.Popen`)."""
    return [sys.executable, "-m", "evimae_stream.cli", *map(str, args)]


def cli(*args, env: dict | None = None, timeout=240) -> subprocess.CompletedProcess:
    """``python -m evimae_stream.cli ARGS`` from the repository root; ``env`` adds variables."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def events(source: Path | str, *, growing: bool = False) -> list[dict]:
    """The JSON Lines events of a file (a Path) or of text (a str, e.g. captured stdout).

    ``growing``: the file of a run that is still writing it: no file yet is no events, and the
    line being written (not yet whole JSON) ends the list."""
    if growing and isinstance(source, Path) and not source.exists():
        return []
    text = source.read_text() if isinstance(source, Path) else source
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if not growing:
                raise
            break
    return out


def predictions_by_window(jsonl: Path) -> dict[int, dict]:
    """The prediction events of a JSONL file by window index."""
    return {e["window"]: e for e in events(jsonl) if e["type"] == "prediction"}


def replay_recording(model: Path, rec: Path, tmp_path: Path) -> dict[int, dict]:
    """Replay the recording ``rec`` through the CLI at max speed (eager); its predictions by
    window index."""
    replay_out = tmp_path / "replay.jsonl"
    proc = cli("--replay", rec, "--speed", "max", "--model", model, "--jsonl", replay_out,
               "--quiet", "--backend", "eager", timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return predictions_by_window(replay_out)
