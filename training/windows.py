"""Cutting labelled sessions into model windows, with the runtime's own window geometry.

A window ends at ``t_ref`` and covers ``(t_ref − window_s, t_ref]``; its geometry is the
runtime's :class:`~evimae_stream.window.WindowGeometry`. Window ends are the runtime's ticks every
``stride_s`` from the session's start whose whole window fits
(:meth:`~evimae_stream.window.WindowGeometry.ends_s`), or are given (e.g. the ``t_ref`` of each
prediction of a runtime replay). The IMU samples sit on the timeline the runtime's rings give
them (each stream's device→host time map, :class:`~evimae_stream.rings.ImuRing`, not the raw
arrival stamps) and are linearly resampled onto the model grid (``rate × window_s`` points,
:func:`~evimae_stream.window.resample_imu` — the code the live runtime uses, so a gap of more
than 3 nominal periods is never interpolated across); missing slots are filled by the runtime's
:func:`~evimae_stream.runtime.policy.fill_slots`; the video frames are picked by the runtime's
:func:`~evimae_stream.window.pick_frames` over ``video_span_s`` ending at ``t_ref``. A window of
a replayed session is therefore the runtime's window for the same ``t_ref``.

**Window label = the ground truth of the runtime's ``--eval``**,
:func:`evimae_stream.truth.window_truth` (the label at the window's centre), after
``label_map``; a window whose centre has no label is skipped unless an ``unlabelled`` class is
configured for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.rings import ImuRing
from evimae_stream.runtime.policy import fill_slots
from evimae_stream.sessions.base import Session
from evimae_stream.truth import window_truth
from evimae_stream.types import PLACEMENTS
from evimae_stream.window import WindowGeometry, pick_frames, resample_imu

log = logging.getLogger(__name__)

_NS = 1_000_000_000


@dataclass
class WindowItem:
    """One cut window before preprocessing.

    ``imu``: (samples, 4·C) float32 (acceleration in g, gyroscope in deg/s), placement order
    left_arm, right_arm, left_leg, right_leg (the C channels of each: xyz acceleration, or
    with the gyroscope), or None. ``frames``: keys into the owning :class:`FrameStore`, or None.
    ``labels``: class names (one for sessions; a release clip may have several).
    """

    imu: np.ndarray | None
    frames: list[int] | None
    labels: tuple[str, ...]
    source: str
    t_ref: float
    filled: tuple[str, ...] = ()


@dataclass
class FrameStore:
    """Decoded RGB frames shared by overlapping windows (each frame stored once), kept the way
    the runtime holds them: resized once, from the frame as decoded, to the model's
    ``size×size`` with ``cv2.INTER_LINEAR`` (the resize of the runtime's camera gate and of
    :func:`~evimae_stream.preprocess_video.frames_to_video_tensor`).

    The video transform then has nothing left to resize, so a window's video tensor is exactly
    the runtime's for the same frames. Shrinking frames first and resizing again to ``size``
    does not give the same pixels (up to 2 ImageNet-normalised units apart for 1080p frames),
    so a model would be trained on inputs it never sees live. Memory: ``size² × 3`` bytes a
    frame (150 kB at 224, 38 kB at 112).
    """

    size: int = 224
    frames: list[np.ndarray] = field(default_factory=list)

    def add(self, rgb: np.ndarray) -> int:
        if rgb.shape[:2] != (self.size, self.size):
            rgb = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        self.frames.append(np.ascontiguousarray(rgb, dtype=np.uint8))
        return len(self.frames) - 1

    def get(self, keys: list[int]) -> list[np.ndarray]:
        return [self.frames[k] for k in keys]

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames)


def make_label_fn(
    label_map: dict[str, str], unlabelled: str | None
) -> Callable[[str | None], str | None]:
    """Raw session label → class name (mapped), ``unlabelled`` for no label, None to skip."""

    def fn(raw: str | None) -> str | None:
        if raw is None or raw == "":
            return label_map.get("", unlabelled) if unlabelled is not None else None
        return label_map.get(raw, raw)

    return fn


def _ns(t_s: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(t_s, dtype=np.float64) * _NS).astype(np.int64)


#: the channels of each IMU slot the model reads (the published input: acceleration in g)
MODEL_CHANNELS = ("ax", "ay", "az")

#: one IMU stream as the grid functions take it: (host ns, (N, C) channels, nominal rate)
StreamArrays = tuple[np.ndarray, np.ndarray, float]


def channel_columns(have: tuple[str, ...], read: tuple[str, ...], where: str) -> list[int]:
    """The columns of channels ``read`` in a stream whose columns are ``have``."""
    missing = [c for c in read if c not in have]
    if missing:
        raise InputError(
            f"{where}: no {', '.join(missing)} channel(s) (it has {', '.join(have)}); the model "
            f"reads {', '.join(read)}: record them or train a variant that reads acceleration only"
        )
    return [have.index(c) for c in read]


def stream_arrays(
    session: Session, channels: tuple[str, ...] = MODEL_CHANNELS
) -> dict[str, StreamArrays]:
    """The session's IMU streams on the runtime's timeline, in integer ns from the session start
    (computed once per session).

    Each stream goes through an :class:`~evimae_stream.rings.ImuRing` stamped the way a replay
    stamps it (``t0_ns`` + recorded arrival), so its device→host time map places every sample
    where the runtime places it (arrival jitter removed where the session has device times);
    the raw arrival stamps would give other IMU inputs than the runtime's for the same window.
    ``channels``: the columns kept, in order (acceleration by default).
    """
    origin = int(session.t0_ns or 0)
    out = {}
    for p, s in session.imu.items():
        if not len(s.t):
            continue
        ring = ImuRing(p, len(s.t), s.values.shape[1], s.rate_hz)
        ring.push_block(origin + _ns(s.t), s.values, s.t_dev)
        snap = ring.snapshot()
        cols = channel_columns(tuple(s.channels), channels, f"{session.path}: IMU {p}")
        out[p] = (snap.t_ns - origin, snap.values[:, cols], s.rate_hz)
    return out


def imu_window(
    streams: dict[str, StreamArrays],
    t_ref: float,
    geometry: WindowGeometry,
    fill_missing: bool,
) -> tuple[np.ndarray | None, tuple[str, ...], str | None]:
    """The (samples, 4·C) IMU window ending at ``t_ref`` s; (None, (), reason) when unusable."""
    grid = geometry.imu_grid(round(t_ref * _NS))
    got: dict[str, np.ndarray] = {}
    why = None
    for p in PLACEMENTS:
        if p not in streams:
            continue
        t_ns, acc, rate = streams[p]
        vals, reason = resample_imu(t_ns, acc, grid, rate)
        if vals is None:
            why = f"{p}: {reason}"
            continue
        got[p] = vals
    slots = fill_slots(got, fill_missing)
    if slots is None:
        return None, (), why or "IMU slots missing (set imu.fill_missing: true to fill them)"
    filled = tuple(s for s, src in slots.items() if s != src)
    out = np.concatenate([got[slots[p]] for p in PLACEMENTS], axis=1).astype(np.float32)
    return out, filled, None


@dataclass
class CutStats:
    """Why windows were dropped while cutting a session."""

    kept: int = 0
    no_label: int = 0
    imu_missing: int = 0
    video_missing: int = 0
    unknown_class: int = 0

    def line(self) -> str:
        return (
            f"{self.kept} windows (skipped: {self.no_label} unlabelled, {self.unknown_class} "
            f"not in classes, {self.imu_missing} IMU gaps, {self.video_missing} video gaps)"
        )


def cut_session(
    session: Session,
    geometry: WindowGeometry,
    stride_s: float,
    label_fn: Callable[[str | None], str | None],
    *,
    need_imu: bool = True,
    need_video: bool = False,
    fill_missing: bool = False,
    store: FrameStore | None = None,
    classes: list[str] | None = None,
    t_range: tuple[float, float] | None = None,
    name: str | None = None,
    ends: np.ndarray | None = None,
    channels: tuple[str, ...] = MODEL_CHANNELS,
) -> tuple[list[WindowItem], CutStats]:
    """Every labelled window of ``session`` (see the module doc for the rules).

    ``t_range``: only windows whose whole span lies in ``[start, end]`` seconds (splits of one
    session). ``ends``: the window ends ``t_ref`` (s) to cut at instead of the ``stride_s``
    grid. Frames are decoded in one sequential pass and kept in ``store``. ``channels``: what
    each IMU slot of a window holds (the model's ``imu_channels``).
    """
    stats = CutStats()
    name = name or str(session.path)
    if ends is None:
        lo, hi = t_range if t_range is not None else (0.0, session.duration_s)
        ends = geometry.ends_s(hi, stride_s, start_s=lo)
    fgrid_all: list[np.ndarray] = []
    pending: list[tuple[float, str, np.ndarray | None, tuple[str, ...]]] = []
    arrays = stream_arrays(session, channels) if need_imu else {}
    ftimes_ns = _ns(session.frame_times()) if (need_video and session.has_video) else None
    fps = session.video.fps if session.video else None
    for t_ref in np.asarray(ends, dtype=np.float64).tolist():
        label = label_fn(window_truth(session.labels, t_ref, geometry.window_s))
        if label is None:
            stats.no_label += 1
            continue
        if classes is not None and label not in classes:
            stats.unknown_class += 1
            continue
        imu, filled = None, ()
        if need_imu:
            imu, filled, _ = imu_window(arrays, t_ref, geometry, fill_missing)
            if imu is None:
                stats.imu_missing += 1
                continue
        idx = None
        if need_video:
            if ftimes_ns is None or not len(ftimes_ns):
                stats.video_missing += 1
                continue
            idx = pick_frames(ftimes_ns, round(t_ref * _NS), geometry, fps).index
            if idx is None:
                stats.video_missing += 1
                continue
            fgrid_all.append(idx)
        pending.append((t_ref, label, imu, filled))
    keys: dict[int, int] = {}
    if need_video and fgrid_all:
        assert store is not None, "a FrameStore is needed to cut video windows"
        keys = _load_frames(session, np.unique(np.concatenate(fgrid_all)), ftimes_ns, store)
    items = []
    for k, (t_ref, label, imu, filled) in enumerate(pending):
        frames = [keys[int(i)] for i in fgrid_all[k]] if need_video else None
        items.append(WindowItem(imu, frames, (label,), name, t_ref, filled))
    stats.kept = len(items)
    log.info("%s: %s", name, stats.line())
    return items, stats


def _load_frames(
    session: Session, wanted: np.ndarray, ftimes_ns: np.ndarray, store: FrameStore
) -> dict[int, int]:
    """Decode the frames with indices ``wanted`` (sorted) in one pass; index → store key."""
    keys: dict[int, int] = {}
    want = set(wanted.tolist())
    t0 = float(ftimes_ns[wanted[0]]) / _NS - 1e-3
    t1 = float(ftimes_ns[wanted[-1]]) / _NS + 1e-3
    for t, rgb in session.iter_frames(t0, t1):
        i = int(np.argmin(np.abs(ftimes_ns - round(t * _NS))))
        if i in want and i not in keys:
            keys[i] = store.add(rgb)
    missing = want - set(keys)
    for i in sorted(missing):  # frames the sequential reader did not yield: random access
        keys[i] = store.add(session.frame_at(float(ftimes_ns[i]) / _NS))
    return keys


def class_counts(items: list[WindowItem]) -> Counter:
    """Windows per (first) label."""
    return Counter(it.labels[0] for it in items if it.labels)


def balance_report(splits: dict[str, list[WindowItem]], classes: list[str]) -> str:
    """A table of window counts per class per split (printed at the start of training)."""
    counts = {s: class_counts(items) for s, items in splits.items()}
    width = max([len(c) for c in classes] + [5])
    head = f"{'class':<{width}} " + " ".join(f"{s:>7}" for s in splits)
    lines = [head, "-" * len(head)]
    for c in classes:
        lines.append(f"{c:<{width}} " + " ".join(f"{counts[s].get(c, 0):>7}" for s in splits))
    lines.append(f"{'total':<{width}} " + " ".join(f"{len(v):>7}" for v in splits.values()))
    return "\n".join(lines)
