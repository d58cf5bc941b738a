"""Which channels of each IMU slot a recipe's model reads (``model.gyro``).

``never`` (default): the acceleration, as the published input. ``always``: acceleration and
gyroscope; the variant must read them (the ``imu_patch_*`` variants: ``imu_channels`` 24) and
every session must have ``gx, gy, gz`` (a missing one is named when it is cut). ``auto``:
``always`` when the variant can and every session of the recipe's path sources has a gyroscope
on every IMU (read from ``session.json`` without opening the streams), else ``never``, so one
recipe serves a folder of watch recordings with gyroscopes and one of accelerometer-only
wearables.
The choice is logged and, through the recipe, stored in the artifact (``imu_channels``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.model import model_config
from evimae_stream.model.patch_imu import PatchImuConfig
from evimae_stream.sessions import open_session
from evimae_stream.types import ACC_AXES, GYRO_AXES, PLACEMENTS
from training.config import TrainConfig
from training.sources import PATH_KINDS, resolve_sessions

log = logging.getLogger(__name__)


def session_channels(path: Path) -> set[str]:
    """The channels every IMU of a session has (from our ``session.json``, else the session)."""
    info = path / "session.json"
    if path.is_dir() and info.is_file():
        try:
            imu = json.loads(info.read_text()).get("imu") or {}
            if imu:
                return set.intersection(*(set(s.get("channels", ACC_AXES)) for s in imu.values()))
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # open_session reports what is wrong with the file
    with open_session(path) as s:
        sets = [set(st.channels) for st in s.imu.values()]
    return set.intersection(*sets) if sets else set()


def with_channels(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with ``model.gyro`` resolved into the variant's ``imu_channels`` (see the doc)."""
    m = cfg.model
    if m.gyro == "never":
        return cfg
    reads_gyro = isinstance(model_config(m.variant, 1), PatchImuConfig)
    if not reads_gyro:
        if m.gyro == "always":
            raise InputError(
                f"config model.gyro: always, but variant {m.variant!r} reads acceleration only; "
                "use an imu_patch_* variant"
            )
        return cfg
    on = m.gyro == "always"
    if m.gyro == "auto":
        d = cfg.data
        paths = [r.path for r in resolve_sessions(d)]
        only_paths = all(src.kind in PATH_KINDS for _, src in d.all_sources())
        on = (
            only_paths and bool(paths) and all(set(GYRO_AXES) <= session_channels(p) for p in paths)
        )
        log.info(
            "model.gyro auto: %s (%d sessions)",
            "every session has a gyroscope, the model reads it" if on else "acceleration only",
            len(paths),
        )
    channels = len(PLACEMENTS) * len(ACC_AXES + GYRO_AXES if on else ACC_AXES)
    overrides = {**m.overrides, "imu_channels": channels}
    return replace(cfg, model=replace(m, overrides=overrides, gyro="always" if on else "never"))
