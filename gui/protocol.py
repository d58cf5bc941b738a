"""What the monitor window pulls from the running system, and the controls it may use.

The window talks to the runtime ONLY through a :class:`MonitorSource`: it reads the
:class:`~evimae_stream.buffer.StreamBuffer` (IMU rings and the camera ring), per-stream
:class:`~evimae_stream.health.StreamHealth`, the runtime's
:class:`~evimae_stream.runtime.events.Prediction` objects that arrived since its last pull, and a
:class:`MonitorStatus`; it calls start/stop, recording and the replay controls. Every call returns
quickly: the pipeline and the drivers run in their own threads, and a source never does I/O or
inference on the caller's thread except opening a recording's files.
:class:`gui.local_source.LocalSource` is the implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from evimae_stream.buffer import StreamBuffer
from evimae_stream.health import StreamHealth
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.labelling import Labeller
from evimae_stream.types import Segment

#: what "max" means in the monitor, for the speed menu and for ``evimae-stream --gui --speed max``
#: alike: a paced replay needs a finite pace, and at 8× the runtime on a laptop CPU still infers
#: most windows (it skips the rest, latest wins) while the window repaints at 30 Hz
MAX_SPEED = 8.0
#: replay speeds the controls offer; None is "max" (:data:`MAX_SPEED`)
SPEEDS: tuple[float | None, ...] = (1.0, 2.0, 4.0, None)


@dataclass(frozen=True)
class MonitorStatus:
    """The status bar and the controls' state.

    ``replay``: a recorded session is playing (the replay controls apply); ``position_s`` /
    ``duration_s`` are session seconds then. ``speed`` None is "max". Latencies in ms, None
    before the first prediction. ``timeline_s``: "now" on the prediction timeline (session
    seconds in replay, seconds since start live). ``time_scale``: recorded seconds per host
    second (1 live and for a :class:`~gui.paced.PacedReplay`, whose clock carries the speed;
    the speed for a replay stamped on the wall clock). ``skipped``: windows the runtime cut but
    never inferred (inference was behind; the newest window won), each a hole in the prediction
    lane.
    """

    backend: str = "none"
    precision: str = ""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    running: bool = False
    paused: bool = False
    replay: bool = False
    position_s: float = 0.0
    duration_s: float = 0.0
    speed: float | None = 1.0
    recording: str | None = None
    timeline_s: float = 0.0
    time_scale: float = 1.0
    message: str = ""
    skipped: int = 0


@runtime_checkable
class MonitorSource(Protocol):
    """What the monitor window pulls (~30 Hz, GUI thread; every call returns quickly) and the
    controls it calls."""

    @property
    def buffer(self) -> StreamBuffer:
        """The rings the IMU plots and the video view read."""

    @property
    def labels(self) -> list[Segment]:
        """Ground-truth segments on the timeline (replay of a labelled session), else []."""

    @property
    def classes(self) -> list[str]:
        """Class names in the model's order (fixes the timeline colours), may be []."""

    #: the run's label state behind the label bar (live runs), or None
    labeller: Labeller | None

    def health(self) -> dict[str, StreamHealth]:
        """Per-stream health, in the buffer's stream order."""

    def pull_predictions(self) -> list[Prediction]:
        """The runtime's predictions that arrived since the last call, oldest first."""

    def status(self) -> MonitorStatus:
        """Backend, latency, run/pause state, replay position, recording."""

    def start(self) -> None:
        """Start (or restart) the sensors and the pipeline."""

    def stop(self) -> None:
        """Stop the sensors and the pipeline (the window stays open)."""

    def start_recording(self, folder: str | Path) -> Path:
        """Record the streams as a session into ``folder``; returns the session directory."""

    def stop_recording(self) -> None:
        """Finish the recording (closing happens off the caller's thread)."""

    def pause(self) -> None:
        """Replay: hold the position."""

    def resume(self) -> None:
        """Replay: continue."""

    def seek(self, t_s: float) -> None:
        """Replay: jump to session time ``t_s``."""

    def set_speed(self, speed: float | None) -> None:
        """Replay: play at ``speed``× (None: max)."""

    def close(self) -> None:
        """Stop everything and release the sensors."""
