"""Generate a synthetic session: a simulated wearer whose four IMUs and head camera agree."""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
from pathlib import Path

from evimae_stream.errors import InputError
from evimae_stream.synthetic import generate_session

_SIZE_RE = re.compile(r"^(\d+)[xX](\d+)$")
#: what a previous session in --out consists of (removed by --force, nothing else is)
_SESSION_FILES = ("session.json", "session.json.tmp", "video_ts.csv", "labels.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``evimae-stream synth``."""
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="session directory")
    parser.add_argument("--actions", type=int, default=8, metavar="N", help="actions (default 8)")
    parser.add_argument(
        "--minutes", type=float, default=2.0, metavar="M", help="session length (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--no-video", action="store_true", help="IMUs only, no head camera")
    parser.add_argument(
        "--size", default="320x240", metavar="WxH", help="camera frame size (default 320x240)"
    )
    parser.add_argument(
        "--imu-rate", type=float, default=50.0, metavar="HZ", help="IMU rate, 1-1000 (default 50)"
    )
    parser.add_argument("--force", action="store_true", help="replace a session already in --out")


def _parse_size(text: str) -> tuple[int, int]:
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 4096 and 16 <= h <= 4096 and w % 2 == 0 and h % 2 == 0):
        raise InputError(f"--size {text!r}: use even sizes from 16 to 4096 pixels, e.g. 320x240")
    return w, h


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; give a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise InputError(f"--out {out}: directory is not empty; choose another or pass --force")
    for name in _SESSION_FILES:
        (out / name).unlink(missing_ok=True)
    for path in out.glob("imu_*.csv"):
        path.unlink()
    if (out / "video").is_dir():
        shutil.rmtree(out / "video")


def run(args: argparse.Namespace) -> int:
    """Validate the arguments, write the session, print where and a one-line summary."""
    if args.actions < 1:
        raise InputError(f"--actions {args.actions}: need at least 1 action")
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        raise InputError(f"--minutes {args.minutes}: need a positive number of minutes")
    if args.seed < 0:
        raise InputError(f"--seed {args.seed}: need a non-negative integer")
    if not (math.isfinite(args.imu_rate) and 1.0 <= args.imu_rate <= 1000.0):
        raise InputError(f"--imu-rate {args.imu_rate}: use 1 to 1000 Hz")
    size = _parse_size(args.size)
    _prepare_out(args.out, args.force)
    summary = generate_session(
        args.out,
        actions=args.actions,
        minutes=args.minutes,
        seed=args.seed,
        video=not args.no_video,
        size=size,
        imu_rate_hz=args.imu_rate,
        progress=sys.stderr.isatty(),  # a \r-rewritten bar is noise in a log file or a pipe
    )
    print(f"wrote synthetic session to {args.out}")
    print(summary.line())
    return 0
