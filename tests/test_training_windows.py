"""Cutting sessions into training windows: centre labels, grid alignment, slot filling, frames,
and the release clip layout. Inputs are real written sessions (tests/fixtures_sessions.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.sessions import open_session
from evimae_stream.window import WindowGeometry
from tests.helpers.sessions import (
    build_release,
    build_wear,
    decode_index,
    imu_values,
    read_wear_excerpt,
    write_session,
)
from training.windows import FrameStore, balance_report, cut_session, make_label_fn


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(tmp_path_factory.mktemp("s") / "sess", seconds=2.0)


def test_label_is_taken_at_the_window_centre(session_dir: Path) -> None:
    spec = WindowGeometry(window_s=1.0, imu_rate_hz=50.0, num_frames=4, video_span_s=1.0)
    with open_session(session_dir) as s:
        items, stats = cut_session(s, spec, 0.25, make_label_fn({}, None), fill_missing=True)
    got = {round(it.t_ref, 3): it.labels[0] for it in items}
    # labels: walking [0, 1), stirring [1, 2); centre = t_ref - 0.5
    assert got[1.0] == "walking"  # centre 0.5
    assert got[1.25] == "walking"  # centre 0.75
    assert got[1.5].startswith("stirring")  # centre exactly 1.0 belongs to the next segment
    assert got[1.75].startswith("stirring")
    assert stats.kept == len(items)


def test_unlabelled_windows_skipped_or_mapped(tmp_path: Path) -> None:
    path = write_session(tmp_path / "s", seconds=2.0)
    labels = path / "labels.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:2]) + "\n")  # keep only walking [0, 1)
    spec = WindowGeometry(1.0, 50.0, 4, 1.0)
    with open_session(path) as s:
        skipped, st = cut_session(s, spec, 0.25, make_label_fn({}, None), fill_missing=True)
        mapped, _ = cut_session(s, spec, 0.25, make_label_fn({}, "null"), fill_missing=True)
        renamed, _ = cut_session(
            s, spec, 0.25, make_label_fn({"walking": "gait"}, None), fill_missing=True
        )
    assert [it.labels[0] for it in skipped] == ["walking", "walking"]
    assert st.no_label == 2
    assert [it.labels[0] for it in mapped] == ["walking", "walking", "null", "null"]
    assert {it.labels[0] for it in renamed} == {"gait"}


def test_imu_is_on_the_model_grid_and_missing_slots_are_filled(session_dir: Path) -> None:
    spec = WindowGeometry(window_s=1.0, imu_rate_hz=50.0, num_frames=4, video_span_s=1.0)
    with open_session(session_dir) as s:
        items, _ = cut_session(s, spec, 0.5, make_label_fn({}, None), fill_missing=True)
        none, st = cut_session(s, spec, 0.5, make_label_fn({}, None), fill_missing=False)
    it = next(i for i in items if abs(i.t_ref - 1.5) < 1e-9)
    assert it.imu.shape == (50, 12)
    # grid 0.52 … 1.50 s: left_arm (50 Hz) samples 26…75, right_leg (100 Hz) samples 52…150
    left = imu_values(np.arange(26, 76))
    right = imu_values(np.arange(52, 151, 2), 6)[:, :3]
    np.testing.assert_allclose(it.imu[:, 0:3], left, atol=1e-5)  # left_arm
    np.testing.assert_allclose(it.imu[:, 3:6], left, atol=1e-5)  # right_arm ← left_arm
    np.testing.assert_allclose(it.imu[:, 6:9], right, atol=1e-5)  # left_leg ← right_leg
    np.testing.assert_allclose(it.imu[:, 9:12], right, atol=1e-5)  # right_leg
    assert set(it.filled) == {"right_arm", "left_leg"}
    assert none == [] and st.imu_missing > 0


def test_frames_are_the_nearest_to_the_span_grid(session_dir: Path) -> None:
    spec = WindowGeometry(window_s=1.0, imu_rate_hz=50.0, num_frames=4, video_span_s=0.8)
    store = FrameStore(96)
    with open_session(session_dir) as s:
        items, _ = cut_session(
            s, spec, 0.5, make_label_fn({}, None), need_video=True, fill_missing=True,
            store=store,
        )  # fmt: skip
    it = next(i for i in items if abs(i.t_ref - 1.5) < 1e-9)
    # frame times k/30 s (written at 33.333 ms steps); grid 0.9, 1.1, 1.3, 1.5 s
    got = [decode_index(f) for f in store.get(it.frames)]
    assert got == [27, 33, 39, 45]


def test_wear_subject_windows_match_the_raw_labels(wear_dir: Path, tmp_path: Path) -> None:
    excerpt = wear_dir / "right_wrist_0_10.csv"
    csv_path = build_wear(tmp_path / "wear", excerpt, rows=50 * 240)
    _, _, raw = read_wear_excerpt(excerpt)
    spec = WindowGeometry(window_s=5.0, imu_rate_hz=50.0, num_frames=4, video_span_s=5.0)
    with open_session(csv_path) as s:
        items, _ = cut_session(s, spec, 2.5, make_label_fn({}, "null"))
    assert items
    for it in items:
        centre_row = round((it.t_ref - 2.5) * 50)
        assert it.labels[0] == (raw[centre_row] or "null")


def test_release_clips_become_windows(wear_dir: Path, tmp_path: Path) -> None:
    from training.config import load_config
    from training.data import WindowDataset, load_data

    rel = build_release(tmp_path, wear_dir / "right_wrist_0_10.csv")
    cfg = load_config(
        None,
        [
            f"data.sources=[{{kind: release, path: {rel}}}]",
            "imu.window_s=5.0",
            "data.val_fraction=0.0",
            f"run_dir={tmp_path / 'run'}",
        ],
    )
    bundle = load_data(cfg, num_frames=4, need_imu=True, need_video=False, img_size=32)
    assert bundle.classes == ["jogging", "push-ups (complex)", "lunges"]
    wear_clip, cmu_clip = bundle.splits["train"]
    _, acc, _ = read_wear_excerpt(wear_dir / "right_wrist_0_10.csv")
    # the WEAR clip is 250 samples at 50 Hz: the model grid is the clip itself
    np.testing.assert_allclose(wear_clip.imu[:, 3:6], acc[:250], atol=1e-5)  # right_arm ×1
    np.testing.assert_allclose(wear_clip.imu[:, 0:3], acc[:250] * 4, atol=1e-5)  # left_arm ×4
    assert cmu_clip.labels == ("jogging", "lunges")
    ds = WindowDataset(
        bundle.splits["train"], bundle.store, bundle.classes, PreprocessConfig(),
        need_imu=True, need_video=False,
    )  # fmt: skip
    item = ds[1]
    assert item["imu"].shape == (12, 320, 128)
    assert item["target"].tolist() == [1.0, 0.0, 1.0]


def test_balance_report_counts_per_split() -> None:
    from training.windows import WindowItem

    def w(label: str) -> WindowItem:
        return WindowItem(None, None, (label,), "s", 0.0)

    text = balance_report({"train": [w("a"), w("a"), w("b")], "val": [w("b")]}, ["a", "b"])
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:]}
    assert rows["a"] == ["2", "0"] and rows["b"] == ["1", "1"] and rows["total"] == ["3", "1"]
