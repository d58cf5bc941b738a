"""The rings of a rig (up to four IMU placements and the camera) and window assembly over them.

:class:`StreamBuffer` owns one ring per configured stream (:mod:`evimae_stream.rings`), hands
them to the drivers as sinks, decides which streams are available right now (down, no data,
stale), and cuts a :class:`~evimae_stream.window.Window` ending at ``t_ref`` (by default the
oldest "newest sample" over the required streams) out of consistent ring snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evimae_stream.clock import Clock
from evimae_stream.errors import InputError
from evimae_stream.health import StreamCounters
from evimae_stream.rings import FrameRing, ImuRing, Ring
from evimae_stream.time_map import TimeMap
from evimae_stream.types import CAMERA, PLACEMENTS
from evimae_stream.window import Window, WindowGeometry, pick_frames, resample_imu


@dataclass
class BufferConfig:
    """What :class:`StreamBuffer` holds.

    ``placements``: IMU placements present in the rig (subset of PLACEMENTS).
    ``imu_rate_hz``: nominal rate, one value or one per placement.
    ``imu_seconds``/``frame_capacity``: ring sizes (the longest window plus slack).
    ``required``: streams whose newest sample sets ``t_ref`` (default: all configured).
    ``stale_after_s``: a stream with no sample for this long does not hold ``t_ref`` back and
    is reported missing ("stale").
    """

    placements: tuple[str, ...] = PLACEMENTS
    imu_channels: int = 3
    imu_rate_hz: float | Mapping[str, float] = 50.0
    imu_seconds: float = 20.0
    camera: bool = True
    camera_fps: float | None = 30.0
    frame_capacity: int = 128
    required: tuple[str, ...] | None = None
    stale_after_s: float = 1.0
    max_gap_periods: float = 3.0

    def __post_init__(self) -> None:
        self.placements = tuple(self.placements)
        bad = [p for p in self.placements if p not in PLACEMENTS]
        if bad or len(set(self.placements)) != len(self.placements):
            raise InputError(
                f"buffer placements {list(self.placements)}: each must be one of "
                f"{list(PLACEMENTS)}, at most once"
            )
        for p in self.placements:
            if not self.rate_for(p) > 0:
                raise InputError(f"buffer: IMU rate for {p} must be > 0, got {self.rate_for(p)}")
        if self.imu_channels < 1:
            raise InputError(f"buffer: imu_channels must be >= 1, got {self.imu_channels}")
        if not self.imu_seconds > 0 or self.frame_capacity < 2:
            raise InputError("buffer: imu_seconds must be > 0 and frame_capacity >= 2")
        if self.camera_fps is not None and not self.camera_fps > 0:
            raise InputError(f"buffer: camera_fps must be > 0, got {self.camera_fps}")
        if not self.stale_after_s > 0 or not self.max_gap_periods >= 1:
            raise InputError("buffer: stale_after_s must be > 0 and max_gap_periods >= 1")
        streams = self.stream_names()
        if self.required is not None:
            self.required = tuple(self.required)
            unknown = [s for s in self.required if s not in streams]
            if unknown:
                raise InputError(
                    f"buffer: required streams {unknown} are not configured (have {streams})"
                )

    def rate_for(self, placement: str) -> float:
        """Nominal IMU rate of ``placement``."""
        if isinstance(self.imu_rate_hz, Mapping):
            return float(self.imu_rate_hz.get(placement, 0.0))
        return float(self.imu_rate_hz)

    def stream_names(self) -> list[str]:
        """Configured stream names: the placements, then "camera" if present."""
        return [*self.placements, *([CAMERA] if self.camera else [])]


class StreamBuffer:
    """The rings of a rig (up to four IMU placements and the camera) and window assembly.

    Drivers get their sinks from :meth:`imu_sink` / :meth:`frame_sink`; the scheduler calls
    :meth:`assemble_window`; the GUI reads :meth:`health`.
    """

    def __init__(
        self,
        config: BufferConfig | None = None,
        clock: Clock = time.monotonic_ns,
        time_maps: Mapping[str, TimeMap] | None = None,
    ) -> None:
        self.config = cfg = config or BufferConfig()
        self.clock = clock
        maps = dict(time_maps or {})
        self.imu: dict[str, ImuRing] = {
            p: ImuRing(
                p,
                capacity=max(2, round(cfg.imu_seconds * cfg.rate_for(p))),
                channels=cfg.imu_channels,
                nominal_rate_hz=cfg.rate_for(p),
                time_map=maps.get(p),
                clock=self.clock,
            )
            for p in cfg.placements
        }
        self.camera: FrameRing | None = (
            FrameRing(CAMERA, cfg.frame_capacity, cfg.camera_fps, self.clock)
            if cfg.camera
            else None
        )
        self.required: tuple[str, ...] = (
            cfg.required if cfg.required is not None else tuple(cfg.stream_names())
        )

    def imu_sink(self, placement: str) -> ImuRing:
        """The ring a driver for ``placement`` pushes into."""
        if placement not in self.imu:
            raise InputError(
                f"no IMU stream {placement!r} in this rig (configured: {list(self.imu)})"
            )
        return self.imu[placement]

    def frame_sink(self) -> FrameRing:
        """The camera ring."""
        if self.camera is None:
            raise InputError("this rig has no camera stream (configured without one)")
        return self.camera

    def _rings(self) -> dict[str, Ring]:
        rings: dict[str, Ring] = dict(self.imu)
        if self.camera is not None:
            rings[CAMERA] = self.camera
        return rings

    def health(self) -> dict[str, StreamCounters]:
        """Counters of every configured stream (stale after ``stale_after_s``)."""
        stale = self.config.stale_after_s
        return {name: ring.counters(stale) for name, ring in self._rings().items()}

    def missing_streams(self, now_ns: int | None = None) -> dict[str, str]:
        """Streams that cannot contribute right now (down, no data, stale) → reason."""
        now = self.clock() if now_ns is None else now_ns
        out = {}
        for name, ring in self._rings().items():
            reason = self._unavailable(ring, now)
            if reason is not None:
                out[name] = reason
        return out

    def _unavailable(self, ring: Ring, now: int) -> str | None:
        return ring.unavailable(now, self.config.stale_after_s)

    def default_t_ref(self, now_ns: int | None = None) -> int | None:
        """The oldest "newest sample" over the required streams that are available; None when
        none is."""
        now = self.clock() if now_ns is None else now_ns
        rings = self._rings()
        newest = [
            rings[name].newest_ns
            for name in self.required
            if self._unavailable(rings[name], now) is None
        ]
        valid = [t for t in newest if t is not None]
        return min(valid) if valid else None

    def assemble_window(self, geometry: WindowGeometry, t_ref_ns: int | None = None) -> Window:
        """Build the window of ``geometry`` ending at ``t_ref_ns`` (default
        :meth:`default_t_ref`; when no stream is available, "now" with every stream missing).
        See :mod:`evimae_stream.window` for the grids and the missing rules."""
        now = self.clock()
        unavailable = {name: self._unavailable(r, now) for name, r in self._rings().items()}
        if t_ref_ns is None:
            t_ref_ns = self.default_t_ref(now)
        if t_ref_ns is None:
            t_ref_ns = now
        t_ref = int(t_ref_ns)
        grid = geometry.imu_grid(t_ref)
        missing: dict[str, str] = {}
        newest: list[int] = []
        imu: dict[str, np.ndarray | None] = {}
        for p in PLACEMENTS:
            ring = self.imu.get(p)
            imu[p] = None
            if ring is None:
                missing[p] = "not configured"
                continue
            down = unavailable[p]
            if down is not None and down.startswith("down"):
                missing[p] = down
                continue
            snap = ring.snapshot(int(grid[0]), int(grid[-1]), margin=1)
            vals, why = resample_imu(
                snap.t_ns,
                snap.values,
                grid,
                ring.nominal_rate_hz or geometry.imu_rate_hz,
                self.config.max_gap_periods,
            )
            if vals is None:
                missing[p] = why or "unusable"
                continue
            imu[p] = vals
            newest.append(int(snap.t_ns[-1]))
        fgrid, frames, ftimes = self._frames(geometry, t_ref, unavailable, missing)
        if ftimes is not None:
            newest.append(int(ftimes.max()))
        return Window(
            t_ref_ns=t_ref,
            geometry=geometry,
            imu_times_ns=grid,
            imu=imu,
            frame_grid_ns=fgrid,
            frames=frames,
            frame_times_ns=ftimes,
            missing=missing,
            newest_sample_ns=max(newest) if newest else None,
        )

    def _frames(
        self,
        geometry: WindowGeometry,
        t_ref: int,
        unavailable: dict[str, str | None],
        missing: dict[str, str],
    ) -> tuple[np.ndarray, list[np.ndarray] | None, np.ndarray | None]:
        """(frame grid, frames, their times) of the window; the frames None when missing."""
        cam = self.camera
        why = "not configured" if cam is None else unavailable[CAMERA]
        if cam is None or (why is not None and why.startswith("down")):
            missing[CAMERA] = why or "down"
            return geometry.frame_grid(t_ref), None, None
        times, frames = cam.snapshot(geometry.video_start_ns(t_ref), t_ref, margin=1)
        pick = pick_frames(times, t_ref, geometry, cam.nominal_rate_hz)
        if pick.index is None:
            missing[CAMERA] = pick.why or "unusable"
            return pick.grid_ns, None, None
        return pick.grid_ns, [frames[i] for i in pick.index.tolist()], times[pick.index]
