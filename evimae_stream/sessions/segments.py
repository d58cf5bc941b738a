"""Crash-safe video as short segment files, and reading them back by frame index.

OpenCV's MP4 writer puts the file index at the end, so a process killed mid-file leaves an
unreadable file. We therefore write the camera stream as short segments (``video/<first frame
index, 8 digits>.mp4``, ~0.5 s each) and close each one when the next starts: a crash loses at
most the segment being written. A segment's name is the global index of its first frame, so the
directory alone says which frame is where; the timestamps live in ``video_ts.csv``.

Codec: MPEG-4 part 2 (``mp4v``) in .mp4, which the opencv-python(-headless) wheels can both write
and read back and which encodes deterministically (same frames → same bytes); MJPG in .avi when
mp4v cannot be opened.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evimae_stream.errors import FormatError

log = logging.getLogger(__name__)

#: (FOURCC, file suffix) in order of preference.
CODECS: tuple[tuple[str, str], ...] = (("mp4v", ".mp4"), ("MJPG", ".avi"))


def segment_name(first_index: int, suffix: str) -> str:
    """File name of the segment whose first frame has global index ``first_index``."""
    return f"{first_index:08d}{suffix}"


class SegmentWriter:
    """Writes frames into consecutive segment files in ``directory``; not thread-safe alone."""

    def __init__(self, directory: Path, width: int, height: int, fps: float) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.size = (int(width), int(height))
        self.fps = float(fps)
        self.codec: str | None = None
        self.suffix: str | None = None
        self._writer: cv2.VideoWriter | None = None

    def start(self, first_index: int) -> None:
        """Close the open segment (making it whole on disk) and open the next one."""
        self.close()
        codecs = CODECS if self.codec is None else [(self.codec, self.suffix)]
        for fourcc, suffix in codecs:
            path = self.directory / segment_name(first_index, suffix)
            writer = cv2.VideoWriter(
                str(path), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size
            )
            if writer.isOpened():
                self.codec, self.suffix, self._writer = fourcc, suffix, writer
                return
            writer.release()
            path.unlink(missing_ok=True)
        raise RuntimeError(f"{self.directory}: OpenCV cannot write video with {codecs}")

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def write_rgb(self, rgb: np.ndarray) -> None:
        """Append one RGB frame (H, W, 3) uint8 to the open segment."""
        assert self._writer is not None, "start() a segment first"
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@dataclass
class SegmentIndex:
    """Readable segments: segment ``k`` holds global frames ``starts[k]`` … ``+ counts[k] - 1``.

    Segments are in order but need not be contiguous: a damaged or missing segment leaves a
    hole of frame indices that no segment holds.
    """

    paths: list[Path]
    starts: list[int]
    counts: list[int]
    warnings: list[str]

    @property
    def num_frames(self) -> int:
        """One past the last frame index any segment holds (holes included)."""
        return self.starts[-1] + self.counts[-1] if self.paths else 0

    def frame_indices(self, limit: int) -> np.ndarray:
        """(F,) int64 the global indices below ``limit`` that a readable segment holds."""
        parts = [
            np.arange(s, min(s + n, limit), dtype=np.int64)
            for s, n in zip(self.starts, self.counts, strict=True)
        ]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def locate(self, index: int) -> tuple[int, int]:
        """(segment number, frame offset inside it) of global frame ``index``."""
        k = bisect_right(self.starts, index) - 1
        if k < 0 or index >= self.starts[k] + self.counts[k]:
            raise IndexError(f"frame {index} is not in the video ({self.num_frames} frames)")
        return k, index - self.starts[k]


def _frame_count(path: Path) -> int:
    """Frames OpenCV finds in ``path`` (0 when it cannot open it, e.g. cut off by a crash)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:
            n = 0
            while cap.grab():
                n += 1
        return n
    finally:
        cap.release()


def index_segments(directory: Path) -> SegmentIndex:
    """Find the readable segments in ``directory``.

    A segment that cannot be opened (a zero-byte or damaged file) is skipped and said so by
    name, and so is a gap where segment files are missing: every intact segment around them
    is kept. A segment holding fewer frames than the span to the next one keeps the frames it
    has. What a crash leaves behind — the last segment cut off — is dropped the same way.
    """
    files = []
    for p in Path(directory).iterdir() if Path(directory).is_dir() else []:
        if p.suffix in {s for _, s in CODECS} and p.stem.isdigit():
            files.append((int(p.stem), p))
    files.sort()
    index = SegmentIndex([], [], [], [])
    expected = 0
    for i, (start, path) in enumerate(files):
        if start > expected:
            index.warnings.append(
                f"{path}: starts at frame {start} but frames {expected}..{start - 1} are missing "
                "(no segment holds them); skipped"
            )
        n = _frame_count(path)
        nxt = files[i + 1][0] if i + 1 < len(files) else None
        if n == 0:
            what = "cut off by a crash?" if nxt is None else f"frames {start}..{nxt - 1} lost"
            index.warnings.append(f"{path}: unreadable segment ({what}) dropped")
            expected = start if nxt is None else nxt
            continue
        if nxt is not None and n != nxt - start:
            index.warnings.append(
                f"{path}: holds {n} frames, expected {nxt - start}; only those are read"
            )
            n = min(n, nxt - start)
        index.paths.append(path)
        index.starts.append(start)
        index.counts.append(n)
        expected = start + n
    for w in index.warnings:
        log.warning(w)
    return index


class SegmentReader:
    """Decodes frames by global index; keeps one decoder open for cheap forward steps."""

    def __init__(self, index: SegmentIndex) -> None:
        self.index = index
        self._cap: cv2.VideoCapture | None = None
        self._seg = -1
        self._pos = 0  # offset of the next frame the open decoder returns

    def _open(self, seg: int) -> None:
        self.close()
        self._cap = cv2.VideoCapture(str(self.index.paths[seg]))
        self._seg, self._pos = seg, 0

    def read(self, index: int) -> np.ndarray:
        """The RGB frame (H, W, 3) uint8 with global index ``index``."""
        seg, off = self.index.locate(index)
        if self._cap is None or seg != self._seg or off < self._pos:
            self._open(seg)
        assert self._cap is not None
        while self._pos < off:
            if not self._cap.grab():
                raise FormatError(
                    f"{self.index.paths[seg]}: cannot decode frame {self._pos}; "
                    "the video segment is damaged"
                )
            self._pos += 1
        ok, bgr = self._cap.read()
        if not ok:
            raise FormatError(
                f"{self.index.paths[seg]}: cannot decode frame {off}; the video segment is damaged"
            )
        self._pos += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
            self._seg = -1
