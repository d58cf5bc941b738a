"""The command that runs a freshly trained artifact live, for ``train.py``'s last line.

A session that ``evimae-stream --record`` or the monitor recorded keeps the sensors as they were
given (``session.json``'s ``meta.rig``: the ``--imu-ports`` items, then ``camera=SOURCE``), so the
model trained on it runs on the same rig with ``evimae-stream --model ARTIFACT --imu-ports ...
--camera ...`` (``--no-camera`` for a model without a video mode). Sessions from elsewhere (WEAR,
synthetic) name no rig: the command then has the placeholder ``PLACEMENT=URI`` to fill in.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path

#: the placeholder for sensors nobody recorded
PLACEHOLDER = "PLACEMENT=URI"


def recorded_rig(paths: Iterable[str | Path]) -> str | None:
    """``meta.rig`` of the first of our recorded sessions at or under ``paths``."""
    for p in paths:
        path = Path(p)
        infos = [path / "session.json"] if (path / "session.json").is_file() else []
        if not infos and path.is_dir():
            infos = sorted(path.rglob("session.json"))
        for info in infos:
            try:
                rig = json.loads(info.read_text(encoding="utf-8")).get("meta", {}).get("rig")
            except (OSError, ValueError):
                continue
            if isinstance(rig, str) and rig.strip():
                return rig
    return None


def live_command(artifact: str | Path, modes: Iterable[str], rig: str | None) -> str:
    """``evimae-stream --model ARTIFACT --imu-ports ... [--camera C | --no-camera]`` for the
    sensors of ``rig`` (see the module doc), quoted for a POSIX shell."""
    items = rig.split() if rig else [PLACEHOLDER]
    imu = [t for t in items if not t.startswith("camera=")]
    camera = next((t.removeprefix("camera=") for t in items if t.startswith("camera=")), None)
    video = bool({"multimodal", "video_only"} & set(modes))
    argv = ["evimae-stream", "--model", str(artifact)]
    if imu:
        argv += ["--imu-ports", *imu]
    if camera is not None and video:
        argv += ["--camera", camera]
    elif imu:
        argv.append("--no-camera")
    return " ".join(a if a == PLACEHOLDER else shlex.quote(a) for a in argv)


def recipe_command(cfg, artifact: str | Path) -> str:
    """:func:`live_command` for the artifact a recipe ``cfg`` (a
    :class:`~training.config.TrainConfig`) wrote, on the rig of its training sessions."""
    paths = [*(cfg.data.sessions or []), *(s.path for s in cfg.data.sources if s.path)]
    try:
        modes = json.loads((Path(artifact) / "model.json").read_text(encoding="utf-8"))["modes"]
    except (OSError, ValueError, KeyError):
        modes = [cfg.model.mode]
    return live_command(artifact, modes, recorded_rig(paths))
