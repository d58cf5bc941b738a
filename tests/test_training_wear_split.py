"""The WEAR-excerpt split: sets found from label runs, sets 1-2 train / 3 test, and the
classical baseline's features. Checked on hand-made label sequences and on the real excerpts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.baseline import logistic_regression, nearest_centroid, window_features
from training.wear_excerpts import find_sets, label_runs, read_excerpts, split_sets


def test_runs_and_sets_merge_short_gaps_only() -> None:
    rate = 1.0
    seq = ["", "a", "a", "", "a", *[""] * 20, "a", "a", "b", *[""] * 30, "a"]
    runs = label_runs(seq, rate)
    assert runs[0] == (1.0, 3.0, "a") and runs[1] == (4.0, 5.0, "a")
    sets = find_sets(runs, merge_gap_s=10.0)
    # the 1 s gap merges; the 20 s break does not; "b" in between separates the last "a"
    assert sets["a"] == [(1.0, 5.0), (25.0, 27.0), (58.0, 59.0)]
    assert sets["b"] == [(27.0, 28.0)]


def test_split_three_sets_and_excludes_incomplete_activities() -> None:
    sets = {
        "a": [(0.0, 30.0), (60.0, 90.0), (120.0, 150.0), (200.0, 210.0)],
        "b": [(300.0, 330.0)],
    }
    split = split_sets(sets, val_fraction=0.3, gap_s=5.0)
    assert split.excluded == {"b": 1}
    assert split.test == {"a": [(120.0, 150.0)]}
    (t1, t2), (v,) = split.train["a"], split.val["a"]
    assert t1 == (0.0, 30.0)
    assert v == (81.0, 90.0)  # last 30 % of set 2
    assert t2 == (60.0, 76.0)  # a window-length gap before the val tail
    no_val = split_sets(sets, val_fraction=0.0, gap_s=5.0)
    assert no_val.train["a"] == [(0.0, 30.0), (60.0, 90.0)] and no_val.val["a"] == []


def test_real_excerpts_split_into_three_sets_per_activity(wear_dir: Path) -> None:
    times, acc, labels = read_excerpts(wear_dir)
    assert acc.shape == (len(labels), 3)
    assert len(labels) == 60001  # two 30001-row files sharing one boundary row
    assert np.all(np.diff(times) > 0)
    sets = find_sets(label_runs(labels, 50.0))
    split = split_sets(sets, 0.35, 5.0)
    assert set(split.test) == {
        "jogging (sidesteps)", "bench-dips", "stretching (shoulders)",
        "jogging (butt-kicks)", "burpees",
    }  # fmt: skip
    assert split.excluded == {"lunges": 1}  # cut by the end of the second excerpt
    for label, (test_span,) in split.test.items():
        # every train/val span ends before the test set starts
        assert all(b <= test_span[0] for a, b in split.train[label] + split.val[label])
        # the test set is all one label in the raw rows
        i0, i1 = round(test_span[0] * 50), round(test_span[1] * 50)
        assert set(labels[i0:i1]) == {label} | ({""} if label == "bench-dips" else set())


def test_window_features_known_signal() -> None:
    rate = 50.0
    t = np.arange(250) / rate
    x = np.stack([np.sin(2 * np.pi * 2.0 * t), np.full_like(t, 0.5), 2 * t], axis=1)
    f = window_features(x, rate).reshape(3, 6)  # per axis: mean std min max energy dom_hz
    assert f[0, 5] == pytest.approx(2.0)
    assert f[0, 0] == pytest.approx(0.0, abs=1e-9) and f[0, 4] == pytest.approx(0.5, abs=1e-3)
    assert f[1, 0] == pytest.approx(0.5) and f[1, 1] == pytest.approx(0.0)
    assert f[2, 2] == pytest.approx(0.0) and f[2, 3] == pytest.approx(2 * 249 / rate)


def test_baseline_classifiers_separate_separable_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(0, 0.5, (60, 2))
    y_test = np.array([0, 1, 2, 2])
    x_test = centres[y_test] + 0.3
    assert (nearest_centroid(x, y, x_test, 3) == y_test).all()
    assert (logistic_regression(x, y, x_test, 3) == y_test).all()
