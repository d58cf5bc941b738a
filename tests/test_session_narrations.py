"""Narrations: labels.csv's optional ``text`` column (written, read, old files unchanged) and the
synthetic wearer's paraphrased narrations of its actions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evimae_stream.sessions import ImuSpec, SessionWriter, open_session
from evimae_stream.synthetic.motions import ACTIONS
from evimae_stream.synthetic.narrations import NARRATIONS, narrate


def test_labels_csv_text_column_round_trip_and_old_files_still_read(tmp_path: Path) -> None:
    imu = {"left_arm": ImuSpec(50.0)}
    with SessionWriter(tmp_path / "new", imu=imu, t0_ns=0, wall_start="fixed") as w:
        w.add_imu_block("left_arm", np.arange(10) * 20_000_000, np.zeros((10, 3), np.float32))
        w.add_label(0.0, 0.1, "stirring", "stirring a pot, with a spoon")
        w.add_label(0.1, 0.2, "idle")
    text = (tmp_path / "new" / "labels.csv").read_text().splitlines()
    assert text[0] == "start_s,end_s,label,text"
    with open_session(tmp_path / "new") as s:
        assert [(g.label, g.text) for g in s.labels] == [
            ("stirring", "stirring a pot, with a spoon"),
            ("idle", ""),
        ]
    with SessionWriter(tmp_path / "old", imu=imu, t0_ns=0, wall_start="fixed") as w:
        w.add_imu_block("left_arm", np.arange(10) * 20_000_000, np.zeros((10, 3), np.float32))
        w.add_label(0.0, 0.1, "walking")
        with pytest.raises(ValueError, match="no text column"):
            w.add_label(0.1, 0.2, "idle", "standing")
    assert (tmp_path / "old" / "labels.csv").read_text().splitlines()[0] == "start_s,end_s,label"
    with open_session(tmp_path / "old") as s:
        assert [(g.label, g.text) for g in s.labels] == [("walking", "")]


def test_every_synthetic_action_has_paraphrased_narrations_and_sessions_carry_them() -> None:
    assert set(NARRATIONS) == set(ACTIONS)
    assert all(len(set(v)) >= 3 for v in NARRATIONS.values())
    script = [(0.0, 1.0, "stirring"), (1.0, 2.0, "idle"), (2.0, 3.0, "stirring")]
    texts = narrate(script, seed=3)
    assert texts == narrate(script, seed=3)
    assert texts[0] in NARRATIONS["stirring"] and texts[1] in NARRATIONS["idle"]
    assert texts[0] != texts[2]  # the same action is narrated differently next time
