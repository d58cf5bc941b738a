"""``python -m gui``: the monitor over a live synthetic rig (4 IMUs + head camera), or over a
replayed session, with a model artifact when one is given."""

from __future__ import annotations

import argparse
import logging
import sys

from evimae_stream.errors import EvimaeError, InputError
from gui.app import run_gui
from gui.demo import replay_source, synthetic_pipeline_source, synthetic_source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gui", description=__doc__)
    parser.add_argument("--replay", metavar="PATH", help="replay this session instead of the rig")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic wearer seed (default 0)")
    parser.add_argument("--model", metavar="DIR", help="model artifact to run on the streams")
    parser.add_argument("--screenshot", metavar="PNG", help="save the window as a PNG and exit")
    parser.add_argument("--duration", type=float, help="run this many seconds, then exit")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=max(logging.WARNING - 10 * args.verbose, logging.DEBUG),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.model and args.replay:
            raise InputError(
                "--model with --replay: run `evimae-stream --replay PATH --model DIR --gui`"
            )
        if args.model:
            source = synthetic_pipeline_source(args.model, seed=args.seed)
        elif args.replay:
            source = replay_source(args.replay, speed=args.speed)
        else:
            source = synthetic_source(seed=args.seed)
        return run_gui(source, screenshot=args.screenshot, duration=args.duration)
    except EvimaeError as exc:
        print(f"python -m gui: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
