"""The one description of a rig's streams: which IMUs at which nominal rates, whether a camera
and at what fps and size, and where each stream comes from.

A :class:`StreamSpec` is made once — from the live sources (:func:`drivers.factory.plan_sources`)
or from a recorded session (:meth:`StreamSpec.from_session`) — and handed as one argument to what
needs it: the runtime's rig, the monitor's display rings, both recorders and the GUI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS

#: frames per second assumed for a camera whose rate is not known yet
DEFAULT_CAMERA_FPS = 30.0


@dataclass(frozen=True)
class StreamSpec:
    """A rig's streams (validated on construction).

    ``imu_rates``: placement → nominal rate in Hz (kept in :data:`PLACEMENTS` order).
    ``imu_uris``: placement → where it comes from (a URI, a device, a session path).
    ``camera_fps``: the camera's nominal rate, None without a camera; ``camera_size``: its
    (width, height) when known; ``camera_uri``: where it comes from.
    """

    imu_rates: Mapping[str, float] = field(default_factory=dict)
    imu_uris: Mapping[str, str] = field(default_factory=dict)
    camera_fps: float | None = None
    camera_size: tuple[int, int] | None = None
    camera_uri: str = ""

    def __post_init__(self) -> None:
        bad = [p for p in self.imu_rates if p not in PLACEMENTS]
        if bad:
            raise InputError(f"streams: unknown IMU placement(s) {bad}; use {list(PLACEMENTS)}")
        rates = {p: float(self.imu_rates[p]) for p in PLACEMENTS if p in self.imu_rates}
        for p, r in rates.items():
            if not r > 0:
                raise InputError(f"streams: the IMU rate of {p} must be > 0 Hz, got {r}")
        if self.camera_fps is not None and not self.camera_fps > 0:
            raise InputError(f"streams: the camera fps must be > 0, got {self.camera_fps}")
        object.__setattr__(self, "imu_rates", MappingProxyType(rates))
        object.__setattr__(self, "imu_uris", MappingProxyType(dict(self.imu_uris)))

    @classmethod
    def from_session(
        cls, session, skip_imus: tuple[str, ...] = (), camera: bool = True
    ) -> StreamSpec:
        """The streams of a recorded ``session`` (less the IMUs ``skip_imus``, and its camera
        unless ``camera``)."""
        source = f"replay of {session.path}"
        rates = {p: s.rate_hz for p, s in session.imu.items() if p not in skip_imus}
        video = session.video if camera and session.has_video else None
        size = None
        if video is not None and getattr(video, "width", None):
            size = (int(video.width), int(video.height))
        return cls(
            imu_rates=rates,
            imu_uris=dict.fromkeys(rates, source),
            camera_fps=None if video is None else video.fps,
            camera_size=size,
            camera_uri=source if video is not None else "",
        )

    @property
    def placements(self) -> tuple[str, ...]:
        """The IMU placements, in :data:`PLACEMENTS` order."""
        return tuple(self.imu_rates)

    @property
    def camera(self) -> bool:
        return self.camera_fps is not None

    @property
    def names(self) -> tuple[str, ...]:
        """Every stream's name: the placements, then ``camera``."""
        return (*self.placements, *(("camera",) if self.camera else ()))

    def with_camera_fps(self, fps: float) -> StreamSpec:
        """The same streams with the camera at ``fps`` (known once the camera is open)."""
        return replace(self, camera_fps=float(fps))

    def buffer_config(
        self, span_s: float | None = None, imu_channels: int = 3, stale_after_s: float = 1.0
    ):
        """A :class:`~evimae_stream.buffer.BufferConfig` for these streams. ``span_s``: the
        longest window read from the rings, which sizes them (None: the buffer's defaults, for
        display rings)."""
        from evimae_stream.buffer import BufferConfig

        fps = self.camera_fps or DEFAULT_CAMERA_FPS
        sizes = {}
        if span_s is not None:
            sizes = {
                "imu_seconds": 2 * span_s + 4.0,
                "frame_capacity": max(16, int(fps * (span_s + 2.0)) + 8),
            }
        return BufferConfig(
            placements=self.placements,
            imu_channels=imu_channels,
            imu_rate_hz=dict(self.imu_rates),
            camera=self.camera,
            camera_fps=self.camera_fps if span_s is not None else fps,
            stale_after_s=stale_after_s,
            **sizes,
        )
