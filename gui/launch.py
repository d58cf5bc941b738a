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

from evimae_stream.errors import InputError
from gui.app import run_gui
from gui.runtime_source import live_pipeline_source, replay_pipeline_source

log = logging.getLogger(__name__)


def launch(
    model_dir: Path,
    config,
    plan,
    session_path: Path | None,
    speed: float | None,
    screenshot: Path | None = None,
    duration: float | None = None,
    labels: list[str] | None = None,
    record: Path | None = None,
    annotate: bool = False,
    prefill: bool = False,
    vocabulary: str | None = None,
) -> int:
    """Build the monitor's source for the run and show the window: the live sensors of
    ``plan`` (a :class:`~drivers.factory.SourcePlan`), else a paced replay of ``session_path``
    at ``speed``× (None: "max", :data:`gui.protocol.MAX_SPEED` here). The command line passes
    1× when no ``--speed`` was given, the bundled demo too (the command line alone runs the demo
    at max, on a virtual clock, because nobody watches it). Live, ``labels`` are the label
    bar's action names (default: the model's classes) and ``record`` the folder the Record
    button records into; ``annotate`` opens the session's labels for review instead
    (:mod:`gui.annotate`), ``prefill`` with the model's predictions where it has none.
    ``vocabulary``: ``--vocabulary``, applied before the window opens (the editor changes it
    afterwards)."""
    if annotate:
        from gui.annotate import run_annotate

        return run_annotate(session_path, model_dir if prefill else None, config, labels,
                            screenshot=screenshot)  # fmt: skip
    config = dataclasses.replace(config, topk=max(5, config.topk))
    if session_path is None:
        source = live_pipeline_source(model_dir, plan, config, label_names=labels)
    else:
        source = replay_pipeline_source(model_dir, session_path, speed, config)
    control = getattr(source, "vocabulary", None)
    if vocabulary is not None and control is not None:
        message = control.apply_now(vocabulary)
        if not message.startswith("vocabulary:"):
            raise InputError(message)
    started = time.monotonic()
    code = run_gui(source, screenshot=screenshot, duration=duration, record_folder=record)
    log.info("monitor closed after %.1f s", time.monotonic() - started)
    return code
