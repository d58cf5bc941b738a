"""``evimae-stream --gui``: the monitor over what the command would otherwise run.

The core's CLI finds this front end through the ``evimae_stream.frontends`` entry point (the core
never imports ``gui``) and calls :func:`launch`. Live rigs (``--camera``, ``--imu-ports``) run
the runtime's pipeline on the model artifact; ``--replay`` (and the bundled demo) replays the
session paced on a :class:`~evimae_stream.clock.ScaledClock`, so the model always sees the data
at its real rate, the speed control changes the pace of everything at once, and predictions sit
at session time on the timeline whatever the user pauses or seeks (:mod:`gui.paced`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from gui.app import run_gui
from gui.runtime_source import pipeline_source, replay_pipeline_source

log = logging.getLogger(__name__)


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
        if getattr(args, "speed", None) is None:
            speed = 1.0
        source = replay_pipeline_source(model_dir, session_path, speed, config)
    started = time.monotonic()
    code = run_gui(source, screenshot=args.screenshot, duration=args.duration)
    log.info("monitor closed after %.1f s", time.monotonic() - started)
    return code
