"""The EVI-MAE release's clip layout (for training and evaluation), as a clip dataset.

``<ds>-release/cav_label/{train,test}_{pretrain,finetune}/labels_*.json`` =
``{"data": [{"imu": csv, "label": "mid[,mid]" or "0", "video_id": ..., "frame_path": video}]}``
with paths relative to ``<ds>-release/``, and ``class_labels_indices.csv`` (header
``index,mid,display_name``; at the release root or in ``cav_label/``). IMU clip CSVs keep the
dataset's columns: WEAR (250 rows, ``sbj_id``, 12 acceleration columns, ``label``) or CMU-MMAC
(150 rows, ``timestamp`` + 63 sensor columns). A clip is checked against that shape (and a
CMU-MMAC clip's timestamps for order and 30 Hz) when it is read.

A release root is a set of short clips, not a session: :func:`open_session` refuses it with a
message pointing here; use :class:`ReleaseClipDataset`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.sessions.cmummac import CMU_PLACEMENTS, CMU_RATE_HZ
from evimae_stream.sessions.table import (
    check_increasing,
    check_rate,
    format_error,
    numeric_block,
    numeric_column,
    read_table,
    read_text,
)
from evimae_stream.sessions.wear import WEAR_RATE_HZ
from evimae_stream.types import PLACEMENTS

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train_pretrain", "train_finetune", "test_pretrain", "test_finetune")
CLASS_CSV = "class_labels_indices.csv"


def is_release_root(path: Path) -> bool:
    """True when ``path`` looks like an EVI-MAE ``<ds>-release`` directory."""
    return path.is_dir() and (path / "cav_label").is_dir()


@dataclass
class ReleaseClip:
    """One clip: ``imu`` (L, 12) float32 acceleration in g, placement order left_arm, right_arm,
    left_leg, right_leg (x, y, z each); ``imu_rate`` in Hz; ``video`` file or None; ``labels``
    class indices; ``clip_id`` (the entry's video_id)."""

    imu: np.ndarray
    imu_rate: float
    video: Path | None
    labels: list[int]
    clip_id: str


def read_class_labels(path: Path) -> tuple[list[str], dict[str, int]]:
    """A release's ``class_labels_indices.csv`` (header ``index,mid,display_name``): the class
    names in index order and each mid's index. Indices must be 0..N-1, each once."""
    table = read_table(path, header=True, expect=["index", "mid", "display_name"], quoted=True)
    by_index: dict[int, str] = {}
    mids: dict[str, int] = {}
    for row, line in zip(table.rows, table.line_numbers, strict=True):
        try:
            idx = int(row[0])
        except ValueError:
            raise format_error(
                path, line, f"index {row[0]!r} is not an integer", "fix it"
            ) from None
        if idx in by_index or row[1] in mids:
            raise format_error(path, line, f"duplicate index {idx} or mid {row[1]!r}", "fix it")
        by_index[idx] = row[2]
        mids[row[1]] = idx
    if sorted(by_index) != list(range(len(by_index))):
        raise format_error(path, None, "indices are not 0..N-1", "number the classes from 0")
    return [by_index[i] for i in range(len(by_index))], mids


def _read_classes(root: Path) -> tuple[list[str], dict[str, int]]:
    for f in (root / CLASS_CSV, root / "cav_label" / CLASS_CSV):
        if f.is_file():
            return read_class_labels(f)
    raise InputError(f"{root}: no {CLASS_CSV} (looked in the root and in cav_label/)")


@dataclass(frozen=True)
class ClipLayout:
    """What one dataset's release clip CSV holds: ``rows`` × ``columns`` (header included in
    neither), sampled at ``rate_hz``; ``first`` is its first column's name."""

    dataset: str
    first: str
    rows: int
    columns: int
    rate_hz: float


#: The release's clip shapes (DESIGN §5): WEAR 5 s at 50 Hz × (sbj_id, 12 acc, label);
#: CMU-MMAC 5 s at 30 Hz × (timestamp, 63 sensor columns).
CLIP_LAYOUTS: dict[str, ClipLayout] = {
    "sbj_id": ClipLayout("WEAR", "sbj_id", 250, 14, WEAR_RATE_HZ),
    "timestamp": ClipLayout("CMU-MMAC", "timestamp", 150, 64, CMU_RATE_HZ),
}


def _clip_imu(path: Path) -> tuple[np.ndarray, float]:
    """A release IMU clip CSV → ((L, 12) float32 in model placement order, rate).

    Checks the clip against its dataset's layout (columns, row count, and for CMU-MMAC
    increasing timestamps at 30 Hz) so a clip cut from the wrong file or truncated fails with
    one line naming the file and row instead of becoming a wrong training window.
    """
    first = read_text(path).split("\n", 1)[0].split(",")[0].strip()
    layout = CLIP_LAYOUTS.get(first)
    if layout is None:
        raise format_error(
            path, 1, "first column is neither sbj_id (WEAR) nor timestamp (CMU-MMAC)", "check it"
        )
    if layout.first == "sbj_id":
        names = [f"{p}_acc_{a}" for p in PLACEMENTS for a in "xyz"]
    else:
        names = [f"{CMU_PLACEMENTS[p]}_Accel_{a}" for p in PLACEMENTS for a in "XYZ"]
    shape = f"a {layout.dataset} release clip is {layout.rows} rows x {layout.columns} columns"
    table = read_table(path, header=True, quoted=True, require=names, require_hint=shape)
    head = table.header or []
    if len(head) != layout.columns:
        raise format_error(
            path, 1, f"{len(head)} columns, expected {layout.columns}", f"{shape}; check it"
        )
    if len(table.rows) != layout.rows:
        n = len(table.rows)
        if n > layout.rows:
            row, problem = table.line_numbers[layout.rows], f"data row {layout.rows + 1} of {n}"
        else:
            row = table.line_numbers[-1] if n else 1
            problem = f"the file ends after {n} data rows"
        raise format_error(
            path,
            row,
            f"{problem}, expected exactly {layout.rows}",
            f"{shape}; is the clip truncated or cut from the wrong file?",
        )
    if layout.first == "timestamp":
        ts = numeric_column(table, 0, "timestamp")
        check_increasing(path, ts, table.line_numbers, "timestamp")
        check_rate(
            path,
            ts,
            table.line_numbers,
            layout.rate_hz,
            "column 'timestamp'",
            f"{shape} at {layout.rate_hz:g} Hz with timestamps in seconds",
        )
    values = numeric_block(table, [head.index(c) for c in names], names)
    return values.astype(np.float32), layout.rate_hz


class ReleaseClipDataset:
    """Clips of one split of an EVI-MAE release root; ``ds[i]`` → :class:`ReleaseClip`.

    ``labels_file``: which ``labels_*.json`` of the split (needed when there are several).
    """

    def __init__(
        self, root: str | Path, split: str = "train_finetune", labels_file: str | None = None
    ) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise InputError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
        folder = self.root / "cav_label" / split
        files = sorted(folder.glob("labels_*.json")) if folder.is_dir() else []
        if labels_file is not None:
            files = [f for f in files if f.name == labels_file]
        if not files:
            raise InputError(f"{folder}: no labels_*.json here; is this a <ds>-release root?")
        if len(files) > 1:
            raise InputError(
                f"{folder}: several label files ({', '.join(f.name for f in files)}); "
                "pass labels_file=<name>"
            )
        self.labels_path = files[0]
        self.split = split
        self.classes, self._mids = _read_classes(self.root)
        self.entries = self._read_entries(self.labels_path)

    def _read_entries(self, f: Path) -> list[dict]:
        try:
            doc = json.loads(read_text(f))
        except json.JSONDecodeError as e:
            raise format_error(f, e.lineno, f"bad JSON ({e.msg})", "restore the file") from None
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            raise format_error(f, None, "no 'data' list", 'expected {"data": [...]}')
        for k, e in enumerate(data):
            ok = isinstance(e, dict) and isinstance(e.get("imu"), str)
            ok = ok and isinstance(e.get("label"), str)
            if not ok:
                raise format_error(
                    f, None, f"data[{k}] needs string fields 'imu' and 'label'", "fix that entry"
                )
            for mid in self._split_label(e["label"]):
                if mid not in self._mids:
                    raise format_error(
                        f, None, f"data[{k}]: label {mid!r} is not in {CLASS_CSV}", "fix it"
                    )
        return data

    def _split_label(self, label: str) -> list[str]:
        mids = [m.strip() for m in label.split(",") if m.strip()]
        if mids == ["0"] and "0" not in self._mids:
            return []  # "0": no label (pre-training entries)
        return mids

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> ReleaseClip:
        e = self.entries[i]
        imu, rate = _clip_imu(self.root / e["imu"])
        frame = e.get("frame_path")
        video = self.root / frame if isinstance(frame, str) and frame else None
        if video is not None and not video.exists():
            log.warning(
                "%s: clip %d video %s not found; using IMU only", self.labels_path, i, video
            )
            video = None
        clip_id = str(e.get("video_id", Path(e["imu"]).stem))
        labels = [self._mids[m] for m in self._split_label(e["label"])]
        return ReleaseClip(imu=imu, imu_rate=rate, video=video, labels=labels, clip_id=clip_id)
