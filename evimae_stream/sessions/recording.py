"""Reading our session format (see :mod:`evimae_stream.sessions.writer` for the layout).

A session cut short by a crash is read as far as it is whole: an incomplete last CSV row, an
unreadable last video segment and timestamps of frames that never reached a whole segment are
dropped with a log warning, and :attr:`RecordingSession.recovery` lists what was dropped.
Anything damaged in the middle of a file is a :class:`~evimae_stream.errors.FormatError` naming
the file and row. The timestamps of every IMU CSV and of video_ts.csv must run at about the
rate session.json declares (:func:`~evimae_stream.sessions.table.check_rate`: jitter, drops and
batched arrivals pass). A stream that ran at another rate than it was configured for — a camera
giving 15 of its 30 fps in low light, a congested radio — is still what was recorded: it is read
with a warning naming the file and both rates. Timestamps more than 5× off the declared rate
(wrong time units, a broken file) are a FormatError.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evimae_stream.errors import FormatError, InputError
from evimae_stream.sessions.base import (
    ImuStream,
    Session,
    SessionReader,
    VideoInfo,
    register_reader,
)
from evimae_stream.sessions.labels import LABELS_OPEN, recover_open_segment
from evimae_stream.sessions.segments import SegmentIndex, SegmentReader, index_segments
from evimae_stream.sessions.session_json import read_session_json
from evimae_stream.sessions.table import (
    check_increasing,
    check_rate,
    check_span,
    format_error,
    measured_rate,
    numeric_block,
    numeric_column,
    read_table,
    read_text,
)
from evimae_stream.sessions.writer import (
    LABELS_CSV,
    SESSION_JSON,
    VIDEO_DIR,
    VIDEO_TS,
    imu_file_name,
)
from evimae_stream.types import ACC_AXES, Segment

log = logging.getLogger(__name__)

#: the session kind this module reads (its reader's name in READERS)
KIND = "recording"

_SPAN_FIX = f"fix or remove that row (or t0_ns in {SESSION_JSON}: host nanoseconds)"


def _read_imu(path: Path, placement: str, spec: dict, t0_ns: int, recovery: list[str]) -> ImuStream:
    channels = tuple(spec.get("channels", ACC_AXES))
    rate = float(spec["rate_hz"])
    f = path / spec.get("file", imu_file_name(placement))
    if not f.exists():
        recovery.append(f"{f}: missing, IMU {placement!r} has no samples")
        log.warning(recovery[-1])
        table = None
    else:
        want = ["t_host_ns", "t_dev", *channels]
        table = read_table(
            f, header=True, expect=want, require_newline=True, tolerate_truncated_tail=True
        )
        if table.dropped_tail:
            recovery.append(f"{f}: incomplete last row dropped")
    if table is None or not table.rows:
        return ImuStream(
            placement,
            np.empty(0),
            np.empty((0, len(channels)), np.float32),
            rate,
            channels,
        )
    t_ns = numeric_column(table, 0, "t_host_ns", dtype=np.int64)
    check_increasing(f, t_ns, table.line_numbers, "t_host_ns")
    check_span(f, (t_ns - t0_ns) / 1e9, table.line_numbers, "t_host_ns", _SPAN_FIX, True)
    _check_recorded_rate(
        f,
        (t_ns - t_ns[0]) / 1e9,
        table.line_numbers,
        rate,
        f"IMU {placement!r}",
        f"fix imu.{placement}.rate_hz in {SESSION_JSON} (or the t_host_ns column: nanoseconds)",
    )
    t_dev = numeric_column(table, 1, "t_dev", allow_empty=True)
    has_dev = ~np.isnan(t_dev)
    if has_dev.any() and not has_dev.all():
        bad = int(np.flatnonzero(~has_dev if has_dev[0] else has_dev)[0])
        raise format_error(
            f,
            table.line_numbers[bad],
            "t_dev is empty in some rows and set in others",
            "a stream either has device time in every row or in none",
        )
    values = numeric_block(table, list(range(2, 2 + len(channels))), list(channels))
    return ImuStream(
        placement=placement,
        t=(t_ns - t0_ns).astype(np.float64) / 1e9,
        values=values.astype(np.float32),
        rate_hz=rate,
        channels=channels,
        t_dev=t_dev if has_dev.all() else None,
    )


#: the columns of labels.csv; an optional fourth, ``text``, holds a free-text narration
LABELS_HEADER = ["start_s", "end_s", "label"]


def _read_labels(path: Path) -> list[Segment]:
    f = path / LABELS_CSV
    if not f.exists():
        return []
    text = read_text(f)
    complete = text.endswith("\n")
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, row) for row in reader]
    header = [c.strip() for c in rows[0][1]] if rows else []
    if header not in (LABELS_HEADER, [*LABELS_HEADER, "text"]):
        raise format_error(
            f, 1, "header must be start_s,end_s,label (or start_s,end_s,label,text)",
            "restore the header row",
        )  # fmt: skip
    width = len(header)
    out: list[Segment] = []
    for k, (i, row) in enumerate(rows[1:], start=2):
        last = k == len(rows)
        try:
            if len(row) != width:
                raise ValueError(f"{len(row)} fields, expected {width}")
            start, end = float(row[0]), float(row[1])
            if not row[2] or not (end >= start):
                raise ValueError("empty label or end before start")
            if last and not complete:
                raise ValueError("cut off")
            out.append(Segment(start, end, row[2], row[3] if width == 4 else ""))
        except ValueError as e:
            if last and not complete:
                log.warning("%s: dropped an incomplete last row %d", f, i)
                break
            raise format_error(f, i, str(e), "fix or remove that row") from None
    return out


@dataclass
class RecordingSession(Session):
    """A session in our own format (``kind == "recording"``).

    ``info`` is the whole session.json; ``recovery`` lists what a crash-damaged session lost
    (empty for a cleanly closed one); ``meta`` is the user metadata stored at recording time.
    """

    info: dict = field(default_factory=dict)
    recovery: list[str] = field(default_factory=list)
    _frame_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    _frame_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    _segments: SegmentIndex | None = field(default=None, repr=False)
    _reader: SegmentReader | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> RecordingSession:
        """Open a recorded session directory (raises InputError/FormatError naming the file)."""
        path = Path(path)
        if not (path / SESSION_JSON).is_file():
            raise InputError(f"{path}: no {SESSION_JSON}; not a recorded session directory")
        info = read_session_json(path)
        t0 = int(info["t0_ns"])
        recovery: list[str] = []
        imu = {p: _read_imu(path, p, spec, t0, recovery) for p, spec in info["imu"].items()}
        s = cls(path=path, kind=KIND, imu=imu, t0_ns=t0, meta=dict(info["meta"]))
        s.info = info
        s.recovery = recovery
        if info.get("camera"):
            s._open_video(info["camera"])
        s.labels = _read_labels(path)
        if (path / LABELS_OPEN).exists():  # a crash while labelling: close at the last sample
            s.recovery += recover_open_segment(path, s.duration_s, s.labels)
            s.labels = _read_labels(path)
        classes = s.meta.get("classes")
        if classes is not None:
            s.classes = [str(c) for c in classes]
        elif s.labels:
            s.classes = sorted({seg.label for seg in s.labels})
        if not info.get("complete", False):
            s.recovery.insert(0, f"{path}: the recording was not closed cleanly (crash?)")
        for line in s.recovery:
            log.warning(line)
        return s

    def _open_video(self, cam: dict) -> None:
        fps = float(cam["fps"])
        size = (cam["width"], cam["height"])
        ts_path = self.path / cam.get("timestamps", VIDEO_TS)
        video_dir = self.path / cam.get("video_dir", VIDEO_DIR)
        seg_index = index_segments(video_dir)
        self.recovery += seg_index.warnings
        frame_ns = np.empty(0, np.int64)
        if ts_path.exists():
            table = read_table(
                ts_path,
                header=True,
                expect=["frame_index", "t_host_ns"],
                require_newline=True,
                tolerate_truncated_tail=True,
            )
            if table.dropped_tail:
                self.recovery.append(f"{ts_path}: incomplete last row dropped")
            idx = numeric_column(table, 0, "frame_index", dtype=np.int64)
            bad = np.flatnonzero(idx != np.arange(len(idx)))
            if len(bad):
                i = int(bad[0])
                raise format_error(
                    ts_path,
                    table.line_numbers[i],
                    f"frame_index {idx[i]}, expected {i}",
                    "frame indices must count up from 0",
                )
            frame_ns = numeric_column(table, 1, "t_host_ns", dtype=np.int64)
            check_increasing(ts_path, frame_ns, table.line_numbers, "t_host_ns")
            check_span(
                ts_path,
                (frame_ns - int(self.t0_ns or 0)) / 1e9,
                table.line_numbers,
                "t_host_ns",
                _SPAN_FIX,
                True,
            )
            if len(frame_ns):
                _check_recorded_rate(
                    ts_path,
                    (frame_ns - frame_ns[0]) / 1e9,
                    table.line_numbers,
                    fps,
                    "camera",
                    f"fix camera.fps in {SESSION_JSON} (or the t_host_ns column: nanoseconds)",
                )
        n = min(len(frame_ns), seg_index.num_frames)
        if len(frame_ns) > n:
            self.recovery.append(
                f"{ts_path}: {len(frame_ns) - n} frame timestamps without a whole segment dropped"
            )
        if seg_index.num_frames > n:
            self.recovery.append(
                f"{seg_index.paths[-1].parent}: {seg_index.num_frames - n} untimed frames dropped"
            )
        self._frame_index = seg_index.frame_indices(n)
        self._frame_ns = frame_ns[self._frame_index]
        self._segments = seg_index
        self._reader = SegmentReader(seg_index)
        self.video = VideoInfo(
            num_frames=len(self._frame_index),
            fps=fps,
            width=int(size[0]),
            height=int(size[1]),
            path=video_dir,
        )

    def frame_times(self) -> np.ndarray:
        """(F,) float64 seconds from the session start of every readable frame."""
        return (self._frame_ns - int(self.t0_ns or 0)).astype(np.float64) / 1e9

    def frame_at(self, t: float) -> np.ndarray:
        """The RGB frame (H, W, 3) uint8 nearest in time to ``t``."""
        if not self.has_video or self._reader is None:
            raise InputError(f"{self.path}: this session has no video frames")
        times = self.frame_times()
        i = int(np.searchsorted(times, t))
        if i >= len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
            i = max(i - 1, 0)
        return self._reader.read(int(self._frame_index[i]))

    def iter_frames(
        self, start_s: float = 0.0, end_s: float | None = None
    ) -> Iterator[tuple[float, np.ndarray]]:
        """Frames with ``start_s <= t < end_s`` in order, decoded sequentially (no seeking)."""
        if not self.has_video or self._segments is None:
            return
        times = self.frame_times()
        first = int(np.searchsorted(times, start_s, side="left"))
        last = len(times) if end_s is None else int(np.searchsorted(times, end_s, side="left"))
        reader = SegmentReader(self._segments)  # its own decoder: safe beside frame_at
        try:
            for i in range(first, last):
                yield float(times[i]), reader.read(int(self._frame_index[i]))
        finally:
            reader.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


#: how far a recorded stream's rate may be from the declared one and still be read (a factor)
RECORDED_RATE_FACTOR = 5.0


def _check_recorded_rate(
    path: Path, t_s: np.ndarray, lines: list[int], nominal_hz: float, what: str, fix: str
) -> None:
    """:func:`check_rate` for our own recordings: a rate within :data:`RECORDED_RATE_FACTOR`
    of the declared one is logged, not refused (the recording is what the sensor delivered)."""
    try:
        check_rate(path, t_s, lines, nominal_hz, what, fix)
    except FormatError as exc:
        rate = measured_rate(t_s).by_count
        if not 1 / RECORDED_RATE_FACTOR <= rate / nominal_hz <= RECORDED_RATE_FACTOR:
            raise
        log.warning("%s; read as recorded", exc)


register_reader(
    SessionReader(
        KIND,
        detect=lambda p: p.is_dir() and (p / SESSION_JSON).is_file(),
        open=RecordingSession.open,
        describes=f"a recorded session directory with {SESSION_JSON}",
    )
)
