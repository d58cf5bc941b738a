"""Training data a user points at a folder: directory and glob sources (``--set
data.sessions=DIR``), every path checked before any is cut, validation held out by subject or
session (never by the tail of each session unless there is only one), the split and the IMU
channels the model reads stated in the data record, and ``--set`` appending a source."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.errors import InputError
from evimae_stream.sessions import ImuSpec, SessionWriter
from tests.helpers.paths import REPO
from training.config import load_config
from training.prepare import encoder_config, load_recipe_data
from training.sources import find_sessions, resolve_sessions
from training.split import plan_split

IMU_ONLY = REPO / "configs" / "train" / "imu_only.yaml"
T0 = 1_000_000_000
GYRO = ("ax", "ay", "az", "gx", "gy", "gz")


def session(
    path: Path,
    labels: list[tuple[float, float, str]],
    subject: str | None = None,
    seconds: float = 12.0,
    gyro: bool = False,
) -> Path:
    """An IMU-only recording: one wrist IMU at 50 Hz (acc, optionally gyro), labelled."""
    chans = GYRO if gyro else GYRO[:3]
    meta = {"subject": subject} if subject is not None else {}
    with SessionWriter(
        path, imu={"left_arm": ImuSpec(50.0, chans)}, t0_ns=T0, meta=meta, wall_start="fixed"
    ) as w:
        i = np.arange(int(seconds * 50))
        vals = np.stack([np.sin(0.2 * i + k) for k in range(len(chans))], axis=1)
        w.add_imu_block("left_arm", T0 + i * 20_000_000, vals.astype(np.float32))
        for a, b, name in labels:
            w.add_label(a, b, name)
    return path


def config(*sets: str):
    return load_config(IMU_ONLY, list(sets))


def load(cfg):
    return load_recipe_data(cfg, encoder_config(cfg))


ALL = [(0.0, 12.0, "curl")]


def test_directory_source_finds_every_session_at_any_depth(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    a = session(root / "mon" / "a", ALL)
    b = session(root / "tue" / "b", ALL)
    c = session(root / "c", ALL)
    (root / "notes.txt").write_text("not a session")
    assert find_sessions(root) == [c, a, b]
    # a recording is itself a session: not searched further; a file names itself
    assert find_sessions(a) == [a]
    cfg = config(f"data.sessions={root}")
    assert [r.path for r in resolve_sessions(cfg.data)] == [c, a, b]
    assert all(r.split == "train" for r in resolve_sessions(cfg.data))


def test_glob_source_and_a_list_of_folders(tmp_path: Path) -> None:
    for name in ("2026-01", "2026-02", "2025-12"):
        session(tmp_path / name, ALL)
    cfg = config(f"data.sessions={tmp_path}/2026-*")
    assert [r.path.name for r in resolve_sessions(cfg.data)] == ["2026-01", "2026-02"]
    cfg = config(f"data.sessions=[{tmp_path}/2025-12, {tmp_path}/2026-01]")
    assert [r.key for r in resolve_sessions(cfg.data)] == ["data.sessions.0", "data.sessions.1"]


def test_every_missing_path_is_named_before_anything_is_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = session(tmp_path / "good", ALL)
    (tmp_path / "empty").mkdir()
    cfg = config(
        f"data.sessions=[{good}, {tmp_path}/nope, {tmp_path}/empty, {tmp_path}/x*]",
        f"data.sources=[{{path: {tmp_path}/gone, split: test}}]",
    )
    caplog.set_level(logging.INFO)
    with pytest.raises(InputError) as err:
        load(cfg)
    msg = str(err.value)
    for needle in ("gone not found", "nope not found", "no session under", "matches no path"):
        assert needle in msg, msg
    assert "windows (skipped" not in caplog.text  # the good session was never cut


def test_validation_holds_out_whole_subjects_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i, who in enumerate(["ann", "ann", "bob", "cid", "dee"]):
        session(tmp_path / f"s{i}", [(0.0, 6.0, "curl"), (6.0, 12.0, "raise")], subject=who)
    caplog.set_level(logging.INFO)
    bundle = load(config(f"data.sessions={tmp_path}", "data.val_fraction=0.2"))
    assert bundle.split["by"] == "subject" and len(bundle.split["val"]) == 1
    val_subject = bundle.split["val"][0]
    subject_of = {d["path"]: d["subject"] for d in bundle.sources}
    assert {subject_of[it.source] for it in bundle.splits["val"]} == {val_subject}
    assert val_subject not in {subject_of[it.source] for it in bundle.splits["train"]}
    # validation windows cover whole sessions (both activities), at the evaluation stride
    assert {it.labels[0] for it in bundle.splits["val"]} == {"curl", "raise"}
    val_ends = sorted({it.t_ref for it in bundle.splits["val"]})
    assert np.allclose(np.diff(val_ends), 2.5)


def test_sessions_without_subjects_split_by_session_and_one_session_by_tail(
    tmp_path: Path,
) -> None:
    for i in range(3):
        session(tmp_path / "many" / f"s{i}", [(0.0, 6.0, "curl"), (6.0, 12.0, "raise")])
    bundle = load(config(f"data.sessions={tmp_path / 'many'}"))
    assert bundle.split["by"] == "session"
    val_sources = {it.source for it in bundle.splits["val"]}
    assert len(val_sources) == 1 and not val_sources & {it.source for it in bundle.splits["train"]}
    one = session(tmp_path / "one", [(0.0, 50.0, "curl"), (50.0, 100.0, "raise")], seconds=100)
    bundle = load(config(f"data.sessions={one}"))
    assert bundle.split["by"] == "tail" and bundle.splits["val"]
    with pytest.raises(InputError, match="split_by: subject"):
        load(config(f"data.sessions={tmp_path / 'many'}", "data.split_by=subject"))


def test_plan_split_is_seeded_and_keeps_a_training_group() -> None:
    subjects = {f"/s{i}": f"p{i % 3}" for i in range(9)}
    a = plan_split(subjects, "auto", 0.5, seed=0)
    assert a.by == "subject" and a.val_groups == plan_split(subjects, "auto", 0.5, 0).val_groups
    assert len(a.val_groups) == 2  # round(0.5 * 3), one subject left for training
    assert plan_split(subjects, "auto", 0.9, seed=0).val_groups != ["p0", "p1", "p2"]


def test_gyro_columns_are_named_as_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session(tmp_path / "a", ALL, gyro=True)
    session(tmp_path / "b", ALL)
    caplog.set_level(logging.WARNING)
    bundle = load(config(f"data.sessions={tmp_path}"))
    assert bundle.channels["read"] == ["ax", "ay", "az"]
    assert bundle.channels["not_read"] == {"gx": 1, "gy": 1, "gz": 1}
    assert "not read: gx (in 1 of 2 sessions)" in caplog.text


def test_unlabelled_stretches_are_skipped_unless_a_class_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session(tmp_path / "a", [(0.0, 5.0, "curl"), (8.0, 12.0, "raise")])
    session(tmp_path / "b", [(0.0, 5.0, "curl"), (8.0, 12.0, "raise")])
    caplog.set_level(logging.INFO)
    assert load(config(f"data.sessions={tmp_path}")).classes == ["curl", "raise"]
    assert "windows with no label at their centre skipped" in caplog.text
    named = load(config(f"data.sessions={tmp_path}", "data.unlabelled=rest"))
    assert named.classes == ["rest", "curl", "raise"]
    assert "trained as class 'rest'" in caplog.text


def test_set_appends_a_source_one_past_the_end(tmp_path: Path) -> None:
    a, b = session(tmp_path / "a", ALL), session(tmp_path / "b", ALL)
    cfg = config(
        f"data.sources.0.path={a}",
        f"data.sources.1.path={b}",
        "data.sources.1.split=test",
        "data.sessions=null",
    )
    assert [(s.path, s.split) for s in cfg.data.sources] == [(str(a), "train"), (str(b), "test")]
    with pytest.raises(InputError, match=r"data\.sources\.3.*appends"):
        config(f"data.sources.0.path={a}", f"data.sources.3.path={b}")
