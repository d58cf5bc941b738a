"""MME's motion-trajectory targets for the video tokens of masked pretraining.

MME (Sun et al., CVPR 2023) asks the decoder to predict, for every masked tubelet, where the
patch's content moves over the following frames instead of its pixels. As in the published code
(``m3video``, ``pretrain/engine.py``): a ``grid × grid`` lattice of points per patch (MME: 2 × 2,
one at the centre of each 8 × 8 cell of a 16 × 16 patch) starts at the tubelet's first frame and
is carried ``steps`` frames forward through dense optical flow; the target is the per-step
displacement of every point, in pixels of the model's frame. A point that leaves the frame is
clamped to the border and moves no further (displacement 0 from then on, as MME clamps its
positions); a token whose points all left, or whose track would run past the window's last
frame, has no target: its row is NaN and the loss skips it (MME's ``traj_type`` mask). The
normalisation of the displacements happens in the loss
(:meth:`evimae_stream.model.EviMaePretrain.motion_loss`).

Flow: OpenCV DIS (preset MEDIUM), chosen over Farneback on a known-motion case at the model's
112 × 112 frames (see the commit introducing this module for the numbers). Flow fields are cached
per pair of stored frames (float16, shared by overlapping windows), and the targets of uncropped
windows per window, so an epoch never recomputes either; a multi-scale crop reuses the cached
flow, cropped and rescaled exactly as the frames are.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import cv2
import numpy as np

from evimae_stream.model import EviMaeConfig, PretrainConfig

log = logging.getLogger(__name__)

#: ``(y, x, height, width)`` of a crop in the stored ``S × S`` frame
CropBox = tuple[int, int, int, int]

FLOW_METHODS = ("dis", "farneback")


@dataclass(frozen=True)
class MotionSpec:
    """The geometry of the targets: the model's frames and tokens and the tracks' shape."""

    num_frames: int
    img_size: int
    tubelet: int = 2
    patch: int = 16
    steps: int = 2
    grid: int = 2
    flow: str = "dis"

    def __post_init__(self) -> None:
        for name in ("num_frames", "img_size", "tubelet", "patch", "steps", "grid"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MotionSpec.{name} must be a positive integer, got {value!r}")
        if self.flow not in FLOW_METHODS:
            raise ValueError(f"MotionSpec.flow must be one of {FLOW_METHODS}, got {self.flow!r}")

    @property
    def dim(self) -> int:
        """Target width per token: steps × grid² points × (dx, dy)."""
        return self.steps * self.grid**2 * 2

    @property
    def side(self) -> int:
        return self.img_size // self.patch

    @property
    def tokens(self) -> int:
        return (self.num_frames // self.tubelet) * self.side**2


@functools.cache
def _dis() -> cv2.DISOpticalFlow:
    """One DIS solver per process (creating it costs about as much as one 112² flow)."""
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def dense_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow ``(H, W, 2)`` float32 (dx, dy in pixels) from RGB frame ``a`` to ``b`` (uint8)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    if method == "dis":
        return _dis().calc(ga, gb, None)
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def start_points(spec: MotionSpec) -> np.ndarray:
    """Start positions ``(side, side, grid², 2)`` (x, y pixel centres) of every patch's points."""
    cell = spec.patch / spec.grid
    offs = (np.arange(spec.grid) + 0.5) * cell - 0.5  # within a patch
    oy, ox = np.meshgrid(offs, offs, indexing="ij")
    base = np.arange(spec.side) * spec.patch
    by, bx = np.meshgrid(base, base, indexing="ij")
    x = bx[:, :, None] + ox.reshape(1, 1, -1)
    y = by[:, :, None] + oy.reshape(1, 1, -1)
    return np.stack((x, y), axis=-1).astype(np.float32)


def track(flows: np.ndarray, spec: MotionSpec) -> np.ndarray:
    """Targets ``(N_v, steps·grid²·2)`` float32 from the window's flows ``(T−1, S, S, 2)``.

    Token order is the video tokens' (tubelet, row, column); within a token (step, point, xy).
    Rows of tokens without a target are NaN (see the module docstring).
    """
    s, tt, steps = spec.img_size, spec.tubelet, spec.steps
    n_tub = spec.num_frames // tt
    first = start_points(spec).reshape(1, -1, 2)
    pos = np.repeat(first, n_tub, axis=0)  # (n_tub, M, 2): M = side² · grid²
    alive = np.ones(pos.shape[:2], dtype=bool)
    disp = np.zeros((n_tub, pos.shape[1], steps, 2), np.float32)
    starts = np.arange(n_tub) * tt
    in_window = starts + steps <= spec.num_frames - 1  # (n_tub,)
    for k in np.flatnonzero(in_window):
        for step in range(steps):
            field = flows[starts[k] + step].astype(np.float32)
            p = pos[k].reshape(-1, 1, 2)
            d = cv2.remap(field, p[..., 0], p[..., 1], cv2.INTER_LINEAR, None, cv2.BORDER_REPLICATE)
            d = d.reshape(-1, 2) * alive[k, :, None]
            new = pos[k] + d
            left = ((new < 0) | (new > s - 1)).any(axis=1)
            new = np.clip(new, 0, s - 1)
            disp[k, :, step] = new - pos[k]
            pos[k] = new
            alive[k] &= ~left
    side2, g2 = spec.side**2, spec.grid**2
    out = disp.reshape(n_tub, side2, g2, steps, 2).transpose(0, 1, 3, 2, 4)
    out = np.ascontiguousarray(out).reshape(n_tub * side2, spec.dim)
    valid = alive.reshape(n_tub, side2, g2).any(axis=2) & in_window[:, None]
    out[~valid.reshape(-1)] = np.nan
    return out


def crop_flow(flow: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The flow of the frames cropped to ``box`` and resized to ``size`` (vectors rescaled)."""
    y, x, h, w = box
    sub = flow[..., y : y + h, x : x + w, :].astype(np.float32)
    if (h, w) == (size, size):
        return sub
    scale = np.array([size / w, size / h], np.float32)
    out = [cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) * scale for f in sub]
    return np.stack(out)


def motion_spec(cfg: EviMaeConfig, pcfg: PretrainConfig) -> MotionSpec | None:
    """The targets a pretraining model asks for, None when its ``video_target`` is pixels."""
    if not pcfg.wants_motion:
        return None
    return MotionSpec(
        cfg.num_frames, cfg.img_size, cfg.tubelet, cfg.patch, pcfg.motion_steps, pcfg.motion_grid
    )


class MotionTargets:
    """Motion targets of stored windows, with the flow and target caches.

    ``target(frames, keys, box)`` → ``(N_v, dim)`` float32 for the window whose stored frames
    are ``keys`` (``frames`` their RGB images), cropped to ``box`` (None: uncropped).
    """

    def __init__(self, spec: MotionSpec) -> None:
        self.spec = spec
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self._targets: dict[tuple[int, ...], np.ndarray] = {}
        self._windows: set[tuple[int, ...]] = set()
        self.flow_seconds = 0.0

    def flows(self, frames: list[np.ndarray], keys: list[int]) -> np.ndarray:
        """Cached flows ``(T−1, S, S, 2)`` float16 between consecutive frames of a window."""
        out = []
        self._windows.add(tuple(keys))
        for i in range(len(keys) - 1):
            pair = (keys[i], keys[i + 1])
            if pair not in self._flows:
                t0 = time.perf_counter()
                f = dense_flow(frames[i], frames[i + 1], self.spec.flow)
                self.flow_seconds += time.perf_counter() - t0
                self._flows[pair] = f.astype(np.float16)
            out.append(self._flows[pair])
        return np.stack(out)

    def target(
        self, frames: list[np.ndarray], keys: list[int], box: CropBox | None = None
    ) -> np.ndarray:
        size = self.spec.img_size
        full = box is None or box == (0, 0, size, size)
        if full and tuple(keys) in self._targets:
            return self._targets[tuple(keys)]
        flows = self.flows(frames, keys)
        if not full:
            flows = crop_flow(flows, box, size)
        out = track(flows, self.spec)
        if full:
            self._targets[tuple(keys)] = out
        return out

    def report(self) -> str:
        """One line: flow fields computed, their cost per window and per pair, cache size."""
        pairs, windows = len(self._flows), max(1, len(self._windows))
        return (
            f"motion targets ({self.spec.flow}): {pairs} flow fields for {len(self._windows)} "
            f"windows in {self.flow_seconds:.1f} s ({1e3 * self.flow_seconds / windows:.1f} ms "
            f"per window, {1e3 * self.flow_seconds / max(1, pairs):.1f} ms per pair), "
            f"cache {self.nbytes / 1e6:.1f} MB"
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the caches."""
        return sum(f.nbytes for f in self._flows.values()) + sum(
            t.nbytes for t in self._targets.values()
        )
