"""Reviewing labels: the annotation model's edits, undo and redo, the atomic save that keeps a
backup, prefill into the gaps, and the ``labels`` command's exports (a real subprocess)."""

from __future__ import annotations

import json

import pytest

from evimae_stream.errors import InputError
from evimae_stream.sessions import open_session
from evimae_stream.sessions.annotation import Annotation
from evimae_stream.sessions.labels import LABELS_BACKUP, save_labels
from evimae_stream.types import Segment
from tests.helpers.cli import cli
from tests.helpers.sessions import write_imu_recording


def test_annotation_edits_undo_redo_and_atomic_save_with_backup(tmp_path):
    write_imu_recording(tmp_path / "s")
    save_labels(tmp_path / "s", [Segment(1.0, 4.0, "walk"), Segment(5.0, 8.0, "stir")])
    with open_session(tmp_path / "s") as session:
        ann = Annotation.open(session)
    assert ann.names == ["stir", "walk"] and not ann.dirty
    i = ann.add(3.0, 6.0, "jump")  # paints over the end of walk and the start of stir
    assert ann.segments == [Segment(1.0, 3.0, "walk"), Segment(3.0, 6.0, "jump"),
                            Segment(6.0, 8.0, "stir")]  # fmt: skip
    assert ann.move(i, 2.0, 7.5) == Segment(3.0, 6.0, "jump")  # stops at its neighbours
    assert ann.move(0, start_s=-5.0) == Segment(0.0, 3.0, "walk")  # and at the session start
    ann.rename(2, "sit")
    ann.delete(1)
    assert ann.segments == [Segment(0.0, 3.0, "walk"), Segment(6.0, 8.0, "sit")]
    assert ann.undo() and ann.segments[1] == Segment(3.0, 6.0, "jump")
    assert ann.redo() and len(ann.segments) == 2
    with pytest.raises(InputError, match="shorter"):
        ann.add(20.0, 30.0, "walk")  # outside the 10 s session
    before = (tmp_path / "s" / "labels.csv").read_text()
    ann.save()
    assert (tmp_path / "s" / LABELS_BACKUP).read_text() == before
    assert not ann.dirty
    with open_session(tmp_path / "s") as session:
        assert session.labels == [Segment(0.0, 3.0, "walk"), Segment(6.0, 8.0, "sit")]
    assert not list((tmp_path / "s").glob("*.tmp"))


def test_fill_gaps_only_where_nothing_is_labelled():
    ann = Annotation([Segment(2.0, 4.0, "walk")], duration_s=10.0)
    n = ann.fill_gaps([Segment(0.0, 6.0, "stir"), Segment(6.0, 12.0, "jump")])
    assert n == 3
    assert ann.segments == [Segment(0.0, 2.0, "stir"), Segment(2.0, 4.0, "walk"),
                            Segment(4.0, 6.0, "stir"), Segment(6.0, 10.0, "jump")]  # fmt: skip
    assert ann.undo() and ann.segments == [Segment(2.0, 4.0, "walk")]


def test_labels_command_exports_wear_json_and_csv(tmp_path):
    write_imu_recording(tmp_path / "s")
    save_labels(tmp_path / "s", [Segment(5.0, 8.0, "stir"), Segment(1.0, 4.0, "walk")])
    proc = cli("labels", tmp_path / "s", "--export", "wear", "--out", tmp_path / "w.json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "w.json").read_text())
    entry = doc["database"]["s"]
    assert doc["label_dict"] == {"stir": 0, "walk": 1}
    assert entry["annotations"] == [
        {"label": "walk", "segment": [1.0, 4.0], "label_id": 1},
        {"label": "stir", "segment": [5.0, 8.0], "label_id": 0},
    ]
    assert entry["subset"] == "Training" and entry["duration"] == pytest.approx(9.98, abs=0.01)
    proc = cli("labels", tmp_path / "s", "--export", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["start_s,end_s,label", "1.000,4.000,walk",
                                        "5.000,8.000,stir"]  # fmt: skip
    proc = cli("labels", tmp_path / "s")
    assert "walk: 3.0 s" in proc.stdout and "2 segments" in proc.stdout
    write_imu_recording(tmp_path / "bare")
    proc = cli("labels", tmp_path / "bare", "--export", "csv")
    assert proc.returncode == 2 and "no labels to export" in proc.stderr
    assert "Traceback" not in proc.stderr
