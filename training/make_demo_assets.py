"""Regenerate the bundled demo assets (``evimae_stream/assets/``).

    python training/make_demo_assets.py            # session, then model, then its evaluation
    python training/make_demo_assets.py --session  # only the demo session
    python training/make_demo_assets.py --model    # only the demo model

* ``demo_session/``: a 75 s synthetic wearer (seed 401 — never used for training, validation or
  test of the demo model), 8 actions, 160×120 camera, accelerometers only (gyro off keeps the
  files small).
* ``demo_model/``: ``configs/train/demo.yaml`` (see its comments), then the artifact is
  evaluated per mode on the demo session with :mod:`training.evaluate_artifact`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from evimae_stream.errors import EvimaeError

ASSETS = Path(__file__).resolve().parents[1] / "evimae_stream" / "assets"
SESSION = ASSETS / "demo_session"
MODEL = ASSETS / "demo_model"
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "train" / "demo.yaml"
SESSION_ARGS = {"actions": 8, "minutes": 1.25, "seed": 401, "size": (160, 120), "gyro": False}


def make_session() -> None:
    from evimae_stream.synthetic import generate_session

    if SESSION.exists():
        shutil.rmtree(SESSION)
    summary = generate_session(SESSION, **SESSION_ARGS)
    print(f"{SESSION}: {summary.line()}")


def make_model() -> None:
    from training.config import load_config
    from training.train import run

    run(load_config(RECIPE, [f"output={MODEL}"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--session", action="store_true", help="only the demo session")
    p.add_argument("--model", action="store_true", help="only the demo model")
    args = p.parse_args(argv)
    both = not (args.session or args.model)
    try:
        if args.session or both:
            make_session()
        if args.model or both:
            make_model()
        if SESSION.exists() and MODEL.exists():
            from training.evaluate_artifact import evaluate_sessions

            for mode, m in evaluate_sessions(MODEL, [SESSION], 1.0).items():
                print(f"demo session, {mode}: accuracy {m['accuracy']:.4f} "
                      f"({m['windows']} windows)")  # fmt: skip
    except EvimaeError as exc:
        print(f"make_demo_assets.py: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
