"""Write a session in another format: ``evimae-stream export SESSION --xdf OUT.xdf``.

XDF (the Lab Streaming Layer's format, read by pyxdf, MNE, EEGLAB...): one IMU stream per
placement, the labels as a marker stream, the video's frame timestamps (see
:mod:`evimae_stream.sessions.xdf`). Any session ``--replay`` reads can be exported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evimae_stream.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, metavar="SESSION", help="a session to export")
    parser.add_argument("--xdf", type=Path, metavar="OUT.xdf", required=True, help="XDF file")


def run(args: argparse.Namespace) -> int:
    from evimae_stream.extras import require_xdf
    from evimae_stream.sessions import open_session
    from evimae_stream.sessions.xdf import export_xdf

    require_xdf("export --xdf")  # what reads the file back; fail before writing
    if args.xdf.suffix.lower() != ".xdf":
        raise InputError(f"--xdf {args.xdf}: name the file .xdf")
    with open_session(args.session) as session:
        out = export_xdf(session, args.xdf)
        n = sum(len(s.t) for s in session.imu.values())
    print(f"wrote {out} ({len(session.imu)} IMU streams, {n} samples)", file=sys.stderr)
    return 0
