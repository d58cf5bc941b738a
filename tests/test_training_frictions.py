"""What a user hit training on their own recordings (issue 18 item 4), each pinned: early
stopping and ties in the selection metric, deliberate thread counts, and
``evaluate_artifact.py``'s argument order and default stride."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.sessions import ImuSpec, SessionWriter
from training.config import load_config
from training.data import DataBundle
from training.evaluate_artifact import evaluate_sessions
from training.evaluate_artifact import main as evaluate_main
from training.threads import pick_threads, usable_cpus
from training.train import run
from training.validate import better
from training.windows import FrameStore, WindowItem

CLASSES = ["low", "high"]
#: no body graph: its batch norm moves its running statistics at any learning rate
TINY = (
    "imu_embed_dim: 32, imu_heads: 1, imu_depth: 1, video_embed_dim: 16, video_heads: 1, "
    "use_graph: false"
)
T0 = 1_000_000_000


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def item(label: str, k: int) -> WindowItem:
    """A 2 s window at 50 Hz whose class is its frequency (1.5 Hz low, 6 Hz high)."""
    rng = np.random.default_rng(k)
    t = np.arange(100) / 50.0
    f = 1.5 if label == "low" else 6.0
    imu = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))[:, None] * np.ones(12)
    return WindowItem(imu.astype(np.float32), None, (label,), "made-here", float(k))


def bundle() -> DataBundle:
    splits = {
        s: [item(CLASSES[k % 2], 100 * i + k) for k in range(8)]
        for i, s in enumerate(("train", "val", "test"))
    }
    return DataBundle(splits, list(CLASSES), FrameStore(32), [{"kind": "made-here"}])


def config(run_dir: Path, *sets: str):
    return load_config(
        None,
        [
            f"run_dir={run_dir}",
            "data.sources=[{kind: synthetic}]",
            "model.mode=imu_only",
            f"model.overrides={{{TINY}}}",
            "imu.window_s=2.0",
            "imu.fill_missing=true",
            "train.batch_size=4",
            "train.schedule=constant",
            "train.device=cpu",
            "train.num_threads=1",
            "train.head_lr_mult=1.0",
            *sets,
        ],
    )


def epochs_logged(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_ties_go_to_the_lower_validation_loss() -> None:
    assert better("accuracy", 1.0, 1.0, new_loss=0.2, best_loss=0.3)
    assert not better("accuracy", 1.0, 1.0, new_loss=0.3, best_loss=0.2)
    assert not better("accuracy", 0.9, 1.0, new_loss=0.01, best_loss=0.3)
    assert better("loss", 0.2, 0.3) and not better("accuracy", float("nan"), None)


def test_patience_stops_a_run_that_no_longer_improves(tmp_path: Path) -> None:
    # lr 1e-30 leaves every float32 weight where it is: every epoch ties the first exactly
    cfg = config(tmp_path, "train.epochs=8", "train.patience=2", "train.lr=1e-30")
    out = run(cfg, None, bundle())
    rows = epochs_logged(tmp_path)
    assert len(rows) == 3 and out["metrics"]["best_epoch"] == 1
    assert {r["best_epoch"] for r in rows} == {"1"}


def test_thread_count_is_chosen_not_defaulted(tmp_path: Path) -> None:
    assert pick_threads(3) == (3, "configured")
    n, why = pick_threads(0)
    assert 1 <= n <= usable_cpus() and why.startswith("auto")
    torch.set_num_threads(2)
    run(config(tmp_path / "one", "train.epochs=1", "train.num_threads=1"), None, bundle())
    assert torch.get_num_threads() == 1  # the run (and its spectrogram cache) used 1
    # unset: the idle cores, never torch's default of one thread per core or more
    torch.set_num_threads(usable_cpus() + 3)
    run(config(tmp_path / "auto", "train.epochs=1", "train.num_threads=0"), None, bundle())
    assert 1 <= torch.get_num_threads() <= usable_cpus()


def wrist_session(path: Path) -> Path:
    """20 s of one wrist IMU: 10 s at 1.5 Hz labelled low, 10 s at 6 Hz labelled high."""
    with SessionWriter(path, imu={"left_arm": ImuSpec(50.0)}, t0_ns=T0, wall_start="fixed") as w:
        t = np.arange(1000) / 50.0
        x = np.where(t < 10, np.sin(2 * np.pi * 1.5 * t), np.sin(2 * np.pi * 6.0 * t))
        vals = np.stack([x, x, x], axis=1).astype(np.float32)
        w.add_imu_block("left_arm", T0 + np.arange(1000) * 20_000_000, vals)
        w.add_label(0.0, 10.0, "low")
        w.add_label(10.0, 20.0, "high")
    return path


def test_evaluate_artifact_options_anywhere_and_its_own_stride(tmp_path: Path) -> None:
    run(config(tmp_path / "run", "train.epochs=1", "data.eval_stride_s=3.0"), None, bundle())
    art, sess = tmp_path / "run" / "model", wrist_session(tmp_path / "wrist")
    out = tmp_path / "out.json"
    assert (
        evaluate_main([str(art), "--stride", "2", str(sess), "--threads", "1", "--json", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["imu_only"]["windows"] == 9  # ends 2, 4, ..., 18 s
    assert torch.get_num_threads() == 1
    assert evaluate_main([str(art), str(sess), "--json", str(out)]) == 0
    at_3 = evaluate_sessions(art, [sess], 3.0)["imu_only"]["windows"]
    assert json.loads(out.read_text())["imu_only"]["windows"] == at_3 == 6  # ends 2, 5, ..., 17 s
