"""One ordinary video file (a WEAR mp4, a CMU-MMAC avi) read by frame index through OpenCV.

Published datasets have no per-frame timestamps: frame ``i`` is at ``offset_s + i / fps``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from evimae_stream.errors import FormatError, InputError
from evimae_stream.sessions.base import Session, VideoInfo

log = logging.getLogger(__name__)

#: Reading forward is cheaper than seeking for gaps up to this many frames.
_MAX_STEP = 48


class FileVideo:
    """Random and sequential access to one video file; frame ``i`` at ``offset_s + i / fps``."""

    def __init__(self, path: Path, fps: float | None = None, offset_s: float = 0.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file not found; check the path")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise FormatError(f"{self.path}: OpenCV cannot open this video; is the file whole?")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        rate = float(fps) if fps else file_fps
        if not (rate > 0 and n > 0 and width > 0 and height > 0):
            raise FormatError(
                f"{self.path}: no frames or no frame rate (frames={n}, fps={rate}); "
                "re-encode the video or pass its fps"
            )
        self.info = VideoInfo(num_frames=n, fps=rate, width=width, height=height, path=self.path)
        self.offset_s = float(offset_s)
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0

    def frame_times(self) -> np.ndarray:
        """(F,) float64 seconds of every frame."""
        return self.offset_s + np.arange(self.info.num_frames, dtype=np.float64) / self.info.fps

    def _read(self, cap: cv2.VideoCapture, i: int) -> np.ndarray:
        ok, bgr = cap.read()
        if not ok:
            raise FormatError(f"{self.path}: cannot decode frame {i}; the video may be truncated")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read(self, i: int) -> np.ndarray:
        """The RGB frame (H, W, 3) uint8 with index ``i`` (forward steps reuse the decoder)."""
        if not 0 <= i < self.info.num_frames:
            raise IndexError(f"{self.path}: frame {i} out of range 0..{self.info.num_frames - 1}")
        if self._cap is None:
            self._cap = cv2.VideoCapture(str(self.path))
            self._pos = 0
        if i < self._pos or i - self._pos > _MAX_STEP:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            self._pos = i
        while self._pos < i:
            self._cap.grab()
            self._pos += 1
        frame = self._read(self._cap, i)
        self._pos += 1
        return frame

    def frame_at(self, t: float) -> np.ndarray:
        """The frame nearest in time to ``t``."""
        i = round((t - self.offset_s) * self.info.fps)
        return self.read(min(max(i, 0), self.info.num_frames - 1))

    def iter_frames(
        self, start_s: float = 0.0, end_s: float | None = None
    ) -> Iterator[tuple[float, np.ndarray]]:
        """Frames with ``start_s <= t < end_s`` in order, one seek then sequential decoding."""
        times = self.frame_times()
        first = int(np.searchsorted(times, start_s, side="left"))
        last = len(times) if end_s is None else int(np.searchsorted(times, end_s, side="left"))
        if first >= last:
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            if first:
                cap.set(cv2.CAP_PROP_POS_FRAMES, first)
            for i in range(first, last):
                yield float(times[i]), self._read(cap, i)
        finally:
            cap.release()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass
class FileVideoSession(Session):
    """A session whose video (if any) is one ordinary file with frames at a fixed rate."""

    _file_video: FileVideo | None = field(default=None, repr=False)

    def attach_video(self, video: FileVideo) -> None:
        self._file_video = video
        self.video = video.info

    def frame_times(self) -> np.ndarray:
        if self._file_video is None:
            return np.empty(0, dtype=np.float64)
        return self._file_video.frame_times()

    def frame_at(self, t: float) -> np.ndarray:
        if self._file_video is None:
            raise InputError(f"{self.kind} session {self.path} has no video")
        return self._file_video.frame_at(t)

    def iter_frames(
        self, start_s: float = 0.0, end_s: float | None = None
    ) -> Iterator[tuple[float, np.ndarray]]:
        if self._file_video is None:
            return iter(())
        return self._file_video.iter_frames(start_s, end_s)

    def close(self) -> None:
        if self._file_video is not None:
            self._file_video.close()
