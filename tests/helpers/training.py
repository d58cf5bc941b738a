"""Shared pieces of the training tests: a micro model, synthetic sources, running train.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO

TRAIN = REPO / "training" / "train.py"

#: evimae_tiny shrunk further so a training step takes well under a second on 2 cores
#: (img_size 64: the pretraining mask keeps at least one of the 16 video tokens)
MICRO = (
    "model.overrides={imu_embed_dim: 32, imu_heads: 1, imu_depth: 1, video_embed_dim: 16, "
    "video_heads: 1, video_depth: 1, num_frames: 2, img_size: 64, graph_hidden: 16, "
    "decoder_embed_dim: 16, decoder_heads: 1, decoder_depth: 1}"
)


def synthetic_sources(test: bool = True) -> str:
    """One minute of training wearer, half a minute of a fresh test wearer."""
    items = ["{kind: synthetic, seed: 1, minutes: 1.0, width: 96, height: 72}"]
    if test:
        items.append(
            "{kind: synthetic, seed: 2, minutes: 0.5, actions: 4, width: 96, height: 72, "
            "split: test}"
        )
    return "data.sources=[" + ", ".join(items) + "]"


def micro_args(run_dir: Path, synth_dir: Path, *extra: str, test: bool = True) -> list[str]:
    """``--set`` arguments of a short, fast training run."""
    sets = [
        f"run_dir={run_dir}",
        f"data.synthetic_dir={synth_dir}",
        synthetic_sources(test),
        MICRO,
        "data.stride_s=2.0",
        "train.batch_size=8",
        "train.max_steps_per_epoch=3",
        "train.lr=1e-3",
        "train.num_threads=1",
        *extra,
    ]
    out: list[str] = []
    for s in sets:
        out += ["--set", s]
    return out


def run_train(args: list[str], timeout: float = 240, launcher: list[str] | None = None):
    """Run train.py in a subprocess from the repo root; returns the CompletedProcess."""
    cmd = [*(launcher or [sys.executable]), str(TRAIN), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def read_log(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with (run_dir / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
