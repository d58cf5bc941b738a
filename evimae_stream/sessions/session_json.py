"""Reading and validating ``session.json`` (the description of one recorded session).

Every field a reader uses is checked for its JSON type and range before anything is opened, as
``model.json`` is (:mod:`evimae_stream.artifact`): a wrong type, an absurd number or a file name
that points outside the session directory is one :class:`~evimae_stream.errors.FormatError`
naming ``session.json`` and the field, never a traceback later on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evimae_stream.errors import FormatError
from evimae_stream.sessions.table import format_error, read_text
from evimae_stream.sessions.writer import (
    FORMAT_NAME,
    FORMAT_VERSION,
    SESSION_JSON,
    VIDEO_DIR,
    VIDEO_TS,
    imu_file_name,
)
from evimae_stream.types import ACC_AXES, GYRO_AXES

#: the largest ``t0_ns`` accepted: host nanoseconds (monotonic or since 1970) stay far below it
#: for centuries, while int64 arithmetic on the timestamps stays exact
MAX_T0_NS = 2**62


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _bad(path: Path, problem: str) -> FormatError:
    return format_error(path, None, problem, f"restore {SESSION_JSON}")


def inside(root: Path, name: Any, path: Path, field: str) -> Path:
    """``root / name`` for a relative file name ``name`` that stays inside ``root``; otherwise a
    FormatError naming ``field`` (never the file it would reach)."""
    if not isinstance(name, str) or not name:
        raise _bad(path, f"{field}: bad file {name!r} (expected a file name)")
    target = (root / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(root.resolve()):
        raise _bad(path, f"{field}: {name!r} is outside the session directory")
    return root / name


def _check_imu(root: Path, path: Path, placement: Any, spec: Any) -> None:
    if not isinstance(placement, str) or not isinstance(spec, dict):
        raise _bad(path, f"IMU {placement!r}: expected an object, got {type(spec).__name__}")
    raw = spec.get("channels", list(ACC_AXES))
    channels = tuple(raw) if isinstance(raw, list) else (raw,)
    rate = spec.get("rate_hz")
    if channels not in (ACC_AXES, ACC_AXES + GYRO_AXES) or not _is_positive(rate):
        raise _bad(path, f"IMU {placement!r}: bad channels {channels!r} or rate_hz {rate!r}")
    inside(root, spec.get("file", imu_file_name(placement)), path, f"imu.{placement}.file")


def _check_camera(root: Path, path: Path, cam: Any) -> None:
    if not isinstance(cam, dict):
        raise _bad(path, f"camera: expected an object or null, got {type(cam).__name__}")
    fps = cam.get("fps")
    size = (cam.get("width"), cam.get("height"))
    if not (_is_positive(fps) and all(_is_int(v) and v > 0 for v in size)):
        raise _bad(path, f"camera: bad fps {fps!r} or size {size[0]!r}x{size[1]!r}")
    inside(root, cam.get("timestamps", VIDEO_TS), path, "camera.timestamps")
    inside(root, cam.get("video_dir", VIDEO_DIR), path, "camera.video_dir")


def _check_meta(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict):
        raise _bad(path, f"field 'meta' missing or not dict (got {type(meta).__name__})")
    classes = meta.get("classes")
    if classes is None:
        return
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise _bad(path, f"meta.classes: {classes!r} is not a list of class names")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise _bad(path, f"meta.classes: duplicate class name(s) {', '.join(dupes)}")


def read_session_json(root: Path) -> dict:
    """The validated ``session.json`` of the session directory ``root`` (FormatError otherwise)."""
    path = root / SESSION_JSON
    try:
        info = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise format_error(
            path, e.lineno, f"bad JSON ({e.msg})", "restore or rewrite session.json"
        ) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise format_error(path, None, f"not an {FORMAT_NAME} file", "is this a recorded session?")
    version = info.get("format_version")
    if not _is_int(version) or version > FORMAT_VERSION:
        raise format_error(
            path,
            None,
            f"format_version {version!r} is newer than this software reads ({FORMAT_VERSION})",
            "upgrade evimae-stream",
        )
    t0 = info.get("t0_ns")
    if not (_is_int(t0) and 0 <= t0 <= MAX_T0_NS):
        raise _bad(path, f"t0_ns {t0!r} is not host nanoseconds (an integer 0..2**62)")
    imu = info.get("imu")
    if not isinstance(imu, dict):
        raise _bad(path, f"field 'imu' missing or not dict (got {type(imu).__name__})")
    for placement, spec in imu.items():
        _check_imu(root, path, placement, spec)
    _check_meta(path, info.get("meta"))
    if info.get("camera") is not None:
        _check_camera(root, path, info["camera"])
    if not isinstance(info.get("complete", False), bool):
        raise _bad(path, f"complete: {info['complete']!r} is not true or false")
    return info
