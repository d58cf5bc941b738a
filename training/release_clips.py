"""EVI-MAE release clips (``<ds>-release`` roots) as training windows, and the validation clips
carved from a release's training split.

A release clip is already one window: its IMU is resampled onto the model grid and its frames
are picked evenly over the clip's video, as the published loader does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.preprocess_video import frame_indices_for_window
from evimae_stream.sessions import ReleaseClipDataset
from evimae_stream.window import WindowGeometry, resample_imu
from training.config import SourceConfig
from training.windows import FrameStore, WindowItem

log = logging.getLogger(__name__)

_NS = 1_000_000_000


def release_items(
    src: SourceConfig,
    spec: WindowGeometry,
    need_imu: bool,
    need_video: bool,
    store: FrameStore,
    labelled: bool = True,
) -> tuple[list[WindowItem], list[str]]:
    """Every clip of an EVI-MAE release split as one window (IMU resampled to the model grid,
    ``num_frames`` frames evenly over the clip's video, as the published loader picks them).

    The release's pretraining entries carry no label (``"0"``); they are kept under the label
    ``""`` when ``labelled`` is False (pretraining), and skipped when a label is needed.
    """
    ds = ReleaseClipDataset(src.path, src.release_split, src.labels_file)
    items = []
    skipped = 0
    for i in range(len(ds)):
        clip = ds[i]
        imu = None
        if need_imu:
            # a clip is already one window: its samples span (L-1)/rate, so it is padded with
            # its edge samples one period out on both sides, then resampled onto the model grid
            # ending at the last sample (identity when the clip matches the grid)
            n = len(clip.imu)
            k = np.arange(-1, n + 1)
            t_ns = np.round(k / clip.imu_rate * _NS).astype(np.int64)
            padded = np.concatenate([clip.imu[:1], clip.imu, clip.imu[-1:]])
            grid = spec.imu_grid(int(t_ns[-2]))
            imu, why = resample_imu(t_ns, padded, grid, clip.imu_rate)
            if imu is None:
                raise InputError(
                    f"{ds.labels_path}: clip {clip.clip_id} is shorter than imu.window_s "
                    f"({why}); use the dataset's window (WEAR 5 s, CMU-MMAC 5 s)"
                )
        frames = None
        if need_video:
            if clip.video is None:
                skipped += 1
                continue
            frames = _clip_frames(clip.video, spec.num_frames, store)
        labels = tuple(ds.classes[k] for k in clip.labels)
        if not labels:
            if labelled:
                skipped += 1
                continue
            labels = ("",)
        items.append(WindowItem(imu, frames, labels, clip.clip_id, 0.0))
    if skipped:
        log.warning("%s: %d clips skipped (no label or no video)", ds.labels_path, skipped)
    return items, list(ds.classes)


def _clip_frames(path: Path, num_frames: int, store: FrameStore) -> list[int]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr)
    finally:
        cap.release()
    if not frames:
        raise InputError(f"{path}: no decodable frames; check the clip video")
    picks = frame_indices_for_window(len(frames), num_frames)
    keys = {i: store.add(cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)) for i in sorted(set(picks))}
    return [keys[i] for i in picks]


def carve_release_val(
    items: list[WindowItem], fraction: float, seed: int, source_index: int
) -> tuple[list[WindowItem], list[WindowItem]]:
    """(train, val): ``round(fraction × clips)`` clips of a release training split, drawn at
    random (seeded by ``(seed, source_index)``, so every run and every DDP rank draws the same
    ones) become validation clips; at least one, and at least one left for training.

    Release clips are already short windows with no timeline to cut at, so the split is by clip
    (a session's tail cannot be held out as :func:`load_data` does for sessions). Both lists keep
    the release's order.
    """
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    n_val = min(len(items) - 1, max(1, round(len(items) * fraction)))
    order = np.random.default_rng([seed, source_index]).permutation(len(items))
    val_idx = set(order[:n_val].tolist())
    train = [it for k, it in enumerate(items) if k not in val_idx]
    val = [it for k, it in enumerate(items) if k in val_idx]
    return train, val
