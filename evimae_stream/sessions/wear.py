"""WEAR subjects (Bock et al. 2024) as sessions.

Layout of the public release (DESIGN §5): per subject ``sbj_N.csv`` at 50 Hz without a
timestamp column (``t = row / 50``), columns ``sbj_id, right_arm_acc_{x,y,z},
right_leg_acc_{x,y,z}, left_leg_acc_{x,y,z}, left_arm_acc_{x,y,z}, label`` (text, ``null`` in
breaks), acceleration in g; optional head-camera ``sbj_N.mp4`` next to the CSV or in a ``videos/``
folder beside it; optional ActivityNet-style ``wear_split_K.json`` annotations (next to the CSV or
in an ``annotations/`` folder beside it), which give the labels when present.

Every label text, in the CSV and in the JSON, must be one of the 18 WEAR classes (CSV: or null)
and a JSON's ``label_dict``/``label_id`` must use the published ids: anything else is a
:class:`~evimae_stream.errors.FormatError` naming the file, the row (or JSON entry) and the label.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.datasets import WEAR_CLASSES
from evimae_stream.errors import InputError
from evimae_stream.sessions.base import ImuStream, SessionReader, register_reader
from evimae_stream.sessions.filevideo import FileVideo, FileVideoSession
from evimae_stream.sessions.table import (
    Table,
    first_line,
    format_error,
    numeric_block,
    read_table,
    read_text,
)
from evimae_stream.sessions.writer import SESSION_JSON
from evimae_stream.types import PLACEMENTS, Segment

log = logging.getLogger(__name__)

#: the session kind this module reads (its reader's name in READERS)
KIND = "wear"

__all__ = ["WEAR_CLASSES", "WEAR_COLUMNS", "WEAR_RATE_HZ", "WearSession", "wear_header"]

WEAR_RATE_HZ = 50.0
#: Sensor slots in the order of the CSV's columns.
WEAR_SLOTS: tuple[str, ...] = ("right_arm", "right_leg", "left_leg", "left_arm")
WEAR_COLUMNS: tuple[str, ...] = (
    "sbj_id",
    *(f"{slot}_acc_{ax}" for slot in WEAR_SLOTS for ax in "xyz"),
    "label",
)
NULL_LABELS = frozenset({"", "null", "nan", "none"})
_SBJ_RE = re.compile(r"^sbj_(\d+)\.csv$")


def wear_header() -> str:
    """The header row of a WEAR subject CSV."""
    return ",".join(WEAR_COLUMNS)


def is_wear_csv(path: Path) -> bool:
    """True when ``path`` is a CSV whose header has WEAR's sensor columns."""
    cells = [c.strip() for c in (first_line(path) or "").split(",")]
    return "right_arm_acc_x" in cells and "label" in cells


def _is_null(label: str) -> bool:
    return label.lower() in NULL_LABELS


def _check_csv_labels(path: Path, table: Table, col: int) -> list[str]:
    """The label column's texts; FormatError naming the first row whose label is neither one of
    the 18 WEAR classes nor null (a typo would otherwise become a 19th class in training)."""
    labels = [r[col].strip() for r in table.rows]
    known = set(WEAR_CLASSES)
    unknown = {x for x in set(labels) if x not in known and not _is_null(x)}
    if unknown:
        i = next(k for k, x in enumerate(labels) if x in unknown)
        raise format_error(
            path,
            table.line_numbers[i],
            f"label {labels[i]!r} is not one of the 18 WEAR classes (or null)",
            "fix the label text (classes as in wear_split_K.json's label_dict)",
        )
    return labels


def _label_runs(labels: list[str], rate: float) -> list[Segment]:
    """Runs of equal non-null labels of the CSV's label column, as segments."""
    out: list[Segment] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if not _is_null(labels[start]):
                out.append(Segment(start / rate, i / rate, labels[start]))
            start = i
    return out


def _json_labels(path: Path, subject: str) -> list[Segment] | None:
    """Segments of ``subject`` in an ActivityNet-style split JSON; None if it is not listed."""
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise format_error(path, e.lineno, f"bad JSON ({e.msg})", "restore the file") from None
    db = doc.get("database") if isinstance(doc, dict) else None
    if not isinstance(db, dict):
        raise format_error(path, None, "no 'database' object", "is this a wear_split_K.json?")
    _check_label_dict(path, doc.get("label_dict"))
    entry = db.get(subject)
    if entry is None:
        return None
    anns = entry.get("annotations") if isinstance(entry, dict) else None
    if not isinstance(anns, list):
        raise format_error(
            path, None, f"database.{subject}.annotations is missing or not a list", "fix the file"
        )
    out: list[Segment] = []
    for k, a in enumerate(anns):
        where = f"database.{subject}.annotations[{k}]"
        try:
            label = a["label"]
            s, e = (float(x) for x in a["segment"])
            if not isinstance(label, str) or not label or not e >= s:
                raise ValueError("empty label or end before start")
        except (KeyError, TypeError, ValueError) as err:
            raise format_error(
                path,
                None,
                f"{where}: bad annotation ({err})",
                "each needs label and segment [s, e]",
            ) from None
        if label not in WEAR_CLASSES:
            raise format_error(
                path,
                None,
                f"{where}: label {label!r} is not one of the 18 WEAR classes",
                "fix the label text (classes as in label_dict)",
            )
        label_id = a.get("label_id")
        if label_id is not None and label_id != WEAR_CLASSES.index(label):
            raise format_error(
                path,
                None,
                f"{where}: label_id {label_id!r} does not match label {label!r} "
                f"(id {WEAR_CLASSES.index(label)})",
                "fix label or label_id",
            )
        out.append(Segment(s, e, label))
    out.sort(key=lambda seg: (seg.start_s, seg.end_s))
    return out


def _check_label_dict(path: Path, label_dict: object) -> None:
    """``label_dict`` (optional) must map WEAR class names to their ids 0-17: a split file
    numbered differently would silently relabel every window."""
    if label_dict is None:
        return
    if not isinstance(label_dict, dict):
        raise format_error(
            path, None, "label_dict is not an object", 'expected {"<class name>": id, ...}'
        )
    for name, idx in label_dict.items():
        if name not in WEAR_CLASSES:
            raise format_error(
                path,
                None,
                f"label_dict: label {name!r} is not one of the 18 WEAR classes",
                "fix the label text",
            )
        want = WEAR_CLASSES.index(name)
        if isinstance(idx, bool) or idx != want:
            raise format_error(
                path,
                None,
                f"label_dict: {name!r} has id {idx!r}, WEAR's is {want}",
                "use the published class ids 0-17",
            )


def _find_video(csv_path: Path, stem: str) -> Path | None:
    for d in (csv_path.parent, csv_path.parent / "videos", csv_path.parent.parent / "videos"):
        p = d / f"{stem}.mp4"
        if p.is_file():
            return p
    return None


def _find_splits(csv_path: Path) -> list[Path]:
    found: list[Path] = []
    for d in (
        csv_path.parent,
        csv_path.parent / "annotations",
        csv_path.parent.parent / "annotations",
    ):
        found += sorted(d.glob("wear_split_*.json")) if d.is_dir() else []
    return found


def resolve_wear_csv(path: Path, subject: int | str | None) -> Path:
    """The subject CSV for ``path``: the file itself, or ``sbj_<subject>.csv`` in a directory."""
    if path.is_file():
        return path
    files = sorted(p for p in path.glob("sbj_*.csv") if _SBJ_RE.match(p.name))
    if not files:
        files = sorted(p for p in (path / "raw" / "inertial").glob("sbj_*.csv"))
    if subject is not None:
        name = str(subject) if str(subject).startswith("sbj_") else f"sbj_{subject}"
        match = [p for p in files if p.stem == name]
        if not match:
            raise InputError(f"{path}: no {name}.csv here; subjects: {[p.stem for p in files]}")
        return match[0]
    if len(files) == 1:
        return files[0]
    if not files:
        raise InputError(f"{path}: no WEAR subject file (sbj_N.csv) here; check the path")
    names = ", ".join(p.stem for p in files[:6]) + (", …" if len(files) > 6 else "")
    raise InputError(
        f"{path}: {len(files)} WEAR subjects here ({names}); choose one with --subject N "
        f"or --replay {files[0]}"
    )


@dataclass
class WearSession(FileVideoSession):
    """One WEAR subject: four accelerometers at 50 Hz, optional head video, labels."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        subject: int | str | None = None,
        video: str | Path | None = None,
        split: str | Path | None = None,
    ) -> WearSession:
        """Open ``sbj_N.csv`` (or a directory of them with ``subject``).

        ``video``: the subject's mp4 (default: found beside the CSV; none → IMU-only).
        ``split``: a ``wear_split_K.json`` whose annotations give the labels (default: the first
        one found beside the CSV that lists the subject; none → runs of the CSV's label column).
        """
        csv_path = resolve_wear_csv(Path(path), subject)
        table = read_table(
            csv_path,
            header=True,
            quoted=True,
            require=list(WEAR_COLUMNS[1:]),
            require_hint=f"a WEAR subject CSV has the header {wear_header()}",
        )
        head = table.header or []
        if len(table.rows) < 2:
            raise format_error(csv_path, None, "fewer than 2 data rows", "is the file truncated?")
        n = len(table.rows)
        t = np.arange(n, dtype=np.float64) / WEAR_RATE_HZ
        names = [f"{p}_acc_{ax}" for p in PLACEMENTS for ax in "xyz"]
        values = numeric_block(table, [head.index(c) for c in names], names).astype(np.float32)
        csv_labels = _check_csv_labels(csv_path, table, head.index("label"))
        imu = {
            p: ImuStream(p, t, values[:, 3 * k : 3 * k + 3].copy(), WEAR_RATE_HZ)
            for k, p in enumerate(PLACEMENTS)
        }
        stem = csv_path.stem
        s = cls(
            path=csv_path,
            kind=KIND,
            imu=imu,
            classes=list(WEAR_CLASSES),
            meta={"subject": stem, "units": {"acc": "g"}},
        )
        labels: list[Segment] | None = None
        splits = [Path(split)] if split is not None else _find_splits(csv_path)
        for sp in splits:
            labels = _json_labels(sp, stem)
            if labels is not None:
                s.meta["labels_from"] = str(sp)
                break
            if split is not None:
                raise format_error(sp, None, f"no database entry for {stem}", "pick another split")
        if labels is None:
            labels = _label_runs(csv_labels, WEAR_RATE_HZ)
            s.meta["labels_from"] = str(csv_path)
        s.labels = labels
        vpath = Path(video) if video is not None else _find_video(csv_path, stem)
        if vpath is not None:
            s.attach_video(FileVideo(vpath))
        return s


def _is_wear_source(path: Path) -> bool:
    """A WEAR ``sbj_N.csv``, or a directory of them that is not one of our recordings."""
    if path.is_dir():
        return not (path / SESSION_JSON).is_file() and any(path.glob("sbj_*.csv"))
    return path.suffix.lower() == ".csv" and is_wear_csv(path)


register_reader(
    SessionReader(
        KIND,
        detect=_is_wear_source,
        open=WearSession.open,
        describes="a WEAR sbj_N.csv or a directory of them",
        hints=("subject", "video", "split"),
    )
)
