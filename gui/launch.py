"""``evimae-stream --gui``: the monitor over what the command would otherwise run.

The core's CLI finds this front end through the ``evimae_stream.frontends`` entry point (the core
never imports ``gui``) and calls :func:`launch`. Live rigs (``--camera``, ``--imu-ports``) run
the runtime's pipeline on the model artifact; ``--replay`` (and the bundled demo) replays the
session paced on a :class:`~evimae_stream.runtime.scheduler.ScaledClock`, so the model always
sees the data at its real rate and the speed control changes the pace of everything at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from drivers.replay import ReplayDriver
from evimae_stream.runtime.scheduler import ScaledClock
from evimae_stream.sessions import open_session
from gui.app import run_gui
from gui.runtime_source import pipeline_source
from gui.source import MAX_SPEED

log = logging.getLogger(__name__)


class PacedReplay(ReplayDriver):
    """A replay on a :class:`ScaledClock` whose speed control changes the clock itself, so the
    replay, the window ticks and the latencies all follow the new pace together."""

    def __init__(self, session, imu_sinks, frame_sink, clock: ScaledClock) -> None:
        super().__init__(session, imu_sinks, frame_sink, speed=1.0, clock=clock)
        self.scaled = clock

    @property
    def speed(self) -> float:
        return self.scaled.speed

    def set_speed(self, speed: float) -> None:
        """Change the pace of the replay and of the pipeline's clock."""
        self.scaled.set_speed(speed)


def launch(args, model_dir: Path, spec, config, session_path: Path | None, speed) -> int:
    """Build the monitor's source for the run ``args`` describes and show the window.

    ``speed`` None is "max" (:data:`gui.source.MAX_SPEED` here). Without ``--speed`` the
    monitor plays at 1×, the bundled demo too (the command line alone runs the demo at max, on
    a virtual clock, because nobody watches it)."""
    config = dataclasses.replace(config, topk=max(5, config.topk))
    if session_path is None:
        from evimae_stream.commands.run import make_live_drivers, plan_live

        imu_cfgs, camera_src, rates, camera_fps = plan_live(args, spec)

        def make_drivers(imu_sinks, frame_sink):
            return make_live_drivers(imu_cfgs, camera_src, imu_sinks, frame_sink)

        source = pipeline_source(model_dir, make_drivers, rates, camera_fps, config)
    else:
        session = open_session(session_path)
        rates = {p: s.rate_hz for p, s in session.imu.items()}
        camera_fps = session.video.fps if session.has_video else None
        if getattr(args, "speed", None) is None:
            speed = 1.0
        clock = ScaledClock(MAX_SPEED if speed is None else float(speed))

        def make_drivers(imu_sinks, frame_sink):
            return {"replay": PacedReplay(session, imu_sinks, frame_sink, clock)}

        source = pipeline_source(
            model_dir,
            make_drivers,
            rates,
            camera_fps,
            config,
            host_clock=clock,
            labels=session.labels,
        )
    started = time.monotonic()
    code = run_gui(source, screenshot=args.screenshot, duration=args.duration)
    log.info("monitor closed after %.1f s", time.monotonic() - started)
    return code
