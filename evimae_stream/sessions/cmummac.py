"""CMU-MMAC kitchen sessions, as preprocessed by mmac_captions, as sessions.

One CSV per session at 30 Hz: ``timestamp`` (seconds) then 63 columns ``<sensor>_<quantity>``
grouped by quantity, for 7 sensors (DESIGN §5). Columns are picked by NAME, never by position.
Placements: 3DMGX1_2794 left_arm, 3DMGX1_3337 right_arm, 3DMGX1_2796 left_leg, 3DMGX1_3261
right_leg (3DMGX1_2795 on the back is not used). Gyro is kept when a sensor has ``Gyro_X/Y/Z``
columns. Values are passed through in the units of the CSV (acceleration in g).
Head camera: ``<Session>_7150991-*.avi`` at 30 fps beside the CSV. Key steps (EgoProceL): a CSV
without header, rows ``start_s,end_s,"<step_id> <step name>"``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.sessions.base import ImuStream, SessionReader, register_reader
from evimae_stream.sessions.filevideo import FileVideo, FileVideoSession
from evimae_stream.sessions.table import (
    check_increasing,
    check_rate,
    check_span,
    first_line,
    format_error,
    numeric_block,
    numeric_column,
    read_table,
    read_text,
)
from evimae_stream.types import Segment

log = logging.getLogger(__name__)

#: the session kind this module reads (its reader's name in READERS)
KIND = "cmummac"

CMU_RATE_HZ = 30.0
#: The 7 sensors in the CSV's order.
CMU_SENSORS: tuple[str, ...] = (
    "3DMGX1_2794",
    "3DMGX1_2795",
    "3DMGX1_2796",
    "3DMGX1_3261",
    "3DMGX1_3337",
    "6DOFv4_015711",
    "6DOFv4_0160E3",
)
CMU_PLACEMENTS: dict[str, str] = {
    "left_arm": "3DMGX1_2794",
    "right_arm": "3DMGX1_3337",
    "left_leg": "3DMGX1_2796",
    "right_leg": "3DMGX1_3261",
}
HEAD_CAMERA = "7150991"


def is_cmummac_csv(path: Path) -> bool:
    """True when ``path`` is a CSV whose header is ``timestamp`` plus CMU-MMAC sensor columns."""
    head = first_line(path)
    cells = [c.strip() for c in (head or "").split(",")]
    return bool(cells) and cells[0] == "timestamp" and "3DMGX1_2794_Accel_X" in cells


def read_keysteps(path: Path) -> tuple[list[Segment], dict[str, str]]:
    """EgoProceL key steps: segments labelled with the step name, and name → step id."""
    text = read_text(path)
    out: list[Segment] = []
    ids: dict[str, str] = {}
    for i, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            if len(row) != 3:
                raise ValueError(f"{len(row)} fields, expected 3")
            start, end = float(row[0]), float(row[1])
            if not (np.isfinite(start) and np.isfinite(end) and end >= start):
                raise ValueError(f"bad span {row[0]}..{row[1]}")
            step_id, _, name = row[2].strip().partition(" ")
            if not name:
                raise ValueError(f"label {row[2]!r} is not '<step_id> <step name>'")
        except ValueError as e:
            raise format_error(
                path, i, str(e), 'rows are start_s,end_s,"<step_id> <step name>"'
            ) from None
        out.append(Segment(start, end, name.strip()))
        ids[name.strip()] = step_id
    out.sort(key=lambda s: (s.start_s, s.end_s))
    return out, ids


def _find_video(csv_path: Path) -> Path | None:
    for d in (csv_path.parent, csv_path.parent / "videos", csv_path.parent.parent / "videos"):
        hits = sorted(d.glob(f"{csv_path.stem}_{HEAD_CAMERA}*.avi")) if d.is_dir() else []
        if hits:
            return hits[0]
    return None


def _find_keysteps(csv_path: Path) -> Path | None:
    """A header-less key-step CSV beside the session whose name starts with the session name."""
    for p in sorted(csv_path.parent.glob(f"{csv_path.stem}*.csv")):
        if p == csv_path:
            continue
        try:
            first = next(csv.reader([first_line(p) or ""]), [])
            float(first[0]), float(first[1])
        except (ValueError, IndexError):
            continue
        if len(first) == 3:
            return p
    return None


@dataclass
class CmuMmacSession(FileVideoSession):
    """One CMU-MMAC session: four limb IMUs at 30 Hz, optional head video, optional key steps."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        video: str | Path | None = None,
        labels: str | Path | None = None,
        video_offset_s: float = 0.0,
    ) -> CmuMmacSession:
        """Open a session CSV; ``video``/``labels`` override the files found beside it.

        ``video_offset_s``: session time of the video's first frame (default 0: aligned starts).
        """
        csv_path = Path(path)
        needed = [f"{s}_Accel_{a}" for s in CMU_PLACEMENTS.values() for a in "XYZ"]
        table = read_table(
            csv_path,
            header=True,
            require=["timestamp", *needed],
            require_hint="a session CSV needs timestamp and <sensor>_Accel_X/Y/Z for sensors "
            "2794, 3337, 2796, 3261",
        )
        head = table.header or []
        if head[0] != "timestamp":
            raise format_error(
                csv_path, 1, "first column must be 'timestamp'", "is this a CMU-MMAC session CSV?"
            )
        if len(table.rows) < 2:
            raise format_error(csv_path, None, "fewer than 2 data rows", "is the file truncated?")
        ts = numeric_column(table, 0, "timestamp")
        check_increasing(csv_path, ts, table.line_numbers, "timestamp")
        check_span(csv_path, ts, table.line_numbers, "timestamp", "fix or remove that row")
        # every file of the dataset is 30 Hz: check even short files (any interval counts)
        check_rate(
            csv_path,
            ts,
            table.line_numbers,
            CMU_RATE_HZ,
            "column 'timestamp'",
            f"a CMU-MMAC session CSV is {CMU_RATE_HZ:g} Hz with timestamps in seconds",
            min_intervals=1,
        )
        rate = (len(ts) - 1) / (ts[-1] - ts[0])
        t = ts - ts[0]
        imu: dict[str, ImuStream] = {}
        for placement, sensor in CMU_PLACEMENTS.items():
            names = [f"{sensor}_Accel_{a}" for a in "XYZ"]
            gyro = [f"{sensor}_Gyro_{a}" for a in "XYZ"]
            channels: tuple[str, ...] = ("ax", "ay", "az")
            if all(g in head for g in gyro):
                names += gyro
                channels += ("gx", "gy", "gz")
            values = numeric_block(table, [head.index(c) for c in names], names)
            imu[placement] = ImuStream(
                placement, t, values.astype(np.float32), CMU_RATE_HZ, channels
            )
        s = cls(
            path=csv_path,
            kind=KIND,
            imu=imu,
            meta={
                "session": csv_path.stem,
                "first_timestamp": float(ts[0]),
                "measured_rate_hz": float(rate),
                "sensors": dict(CMU_PLACEMENTS),
            },
        )
        lpath = Path(labels) if labels is not None else _find_keysteps(csv_path)
        if lpath is not None:
            s.labels, ids = read_keysteps(lpath)
            s.meta["step_ids"] = ids
            s.meta["labels_from"] = str(lpath)
            s.classes = sorted(ids, key=lambda name: (_id_key(ids[name]), name))
        vpath = Path(video) if video is not None else _find_video(csv_path)
        if vpath is not None:
            s.attach_video(FileVideo(vpath, fps=CMU_RATE_HZ, offset_s=video_offset_s))
        return s


def _id_key(step_id: str) -> tuple[int, str]:
    return (int(step_id), "") if step_id.isdigit() else (1 << 30, step_id)


register_reader(
    SessionReader(
        KIND,
        detect=lambda p: p.is_file() and p.suffix.lower() == ".csv" and is_cmummac_csv(p),
        open=CmuMmacSession.open,
        describes="a CMU-MMAC session CSV",
        hints=("video", "labels", "video_offset_s"),
    )
)
