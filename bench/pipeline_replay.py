"""Throughput and per-stage cost of the runtime on one replay at --speed max, for any session
and model (``bench/run_all.py`` runs the fixed synthetic cases).

    python bench/pipeline_replay.py [--model DIR] [--session DIR] [--seconds 30] [--stride 0.5]
        [--backend eager] [--precision fp32|bf16] [--threads 1] [--sequential]

Without --model: the bundled demo model (a random ``evimae_tiny`` artifact when it is missing);
without --session a synthetic session of ``--seconds`` is generated. Prints windows per second,
× real time and p50 of every stage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import demo_artifact
from replay import _print_replay, replay_max


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--session", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stride", type=float, default=0.5)
    parser.add_argument("--backend", default="eager")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sequential", action="store_true", help="no reader thread")
    args = parser.parse_args()

    from evimae_stream.synthetic import generate_session

    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    session = args.session
    if session is None:
        session = tmp / "session"
        generate_session(session, actions=max(1, int(args.seconds // 10)),
                         minutes=args.seconds / 60.0, seed=7)  # fmt: skip
    r = replay_max(
        session,
        args.model or demo_artifact(tmp),
        threads=args.threads,
        precision=args.precision,
        overlap=not args.sequential,
        stride_s=args.stride,
        backend=args.backend,
    )
    _print_replay(f"{session.name} ({r['backend']})", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
