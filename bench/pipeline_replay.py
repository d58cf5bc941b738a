"""Throughput and per-stage cost of the runtime on a replay at --speed max.

    python bench/pipeline_replay.py [--model DIR] [--session DIR] [--seconds 30] [--stride 0.5]

Without --model a randomly initialised ``evimae_tiny`` artifact is made (same cost as a trained
one); without --session a synthetic session is generated. Prints windows per second (how many
times faster than real time at this stride) and p50/p95 of every stage, wall clock.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--session", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stride", type=float, default=0.5)
    parser.add_argument("--backend", default="eager")
    args = parser.parse_args()

    from drivers.replay import ReplaySource
    from evimae_stream.artifact import ModelMeta, load_artifact, save_artifact
    from evimae_stream.clock import VirtualClock
    from evimae_stream.model import create_model
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.pipeline import (
        Outputs,
        Recognizer,
        RuntimeConfig,
        make_rig,
        run_replay_max,
    )
    from evimae_stream.sessions import open_session
    from evimae_stream.synthetic import generate_session

    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    session_path = args.session
    if session_path is None:
        session_path = tmp / "session"
        generate_session(session_path, actions=max(1, int(args.seconds // 10)),
                         minutes=args.seconds / 60.0, seed=7)  # fmt: skip
    session = open_session(session_path)
    model_dir = args.model
    if model_dir is None:
        model = create_model("evimae_tiny", len(session.classes or ["x"]))
        meta = ModelMeta(
            variant="evimae_tiny", model_config=model.cfg.to_dict(),
            classes=list(session.classes or ["x"]), imu_rate_hz=50.0, window_s=2.0,
            norm_mean=-51.17, norm_std=26.19, num_frames=model.cfg.num_frames,
            img_size=model.cfg.img_size, video_span_s=2.0,
        )  # fmt: skip
        model_dir = save_artifact(model, meta, tmp / "model")
    model, meta = load_artifact(model_dir)
    spec = ModelSpec.from_meta(meta, model)
    config = RuntimeConfig(stride_s=args.stride, backend=args.backend)
    origin = int(session.t0_ns or 0)
    clock = VirtualClock(origin)
    rates = {p: s.rate_hz for p, s in session.imu.items()}
    fps = session.video.fps if session.has_video else None
    buffer, gates = make_rig(spec, rates, fps, clock)
    source = ReplaySource(session, gates.imu, gates.camera, t0_ns=origin)
    outputs = Outputs([], timings=False)
    recognizer = Recognizer(model, spec, config)
    t0 = time.perf_counter()
    run_replay_max(source, buffer, gates, clock, recognizer, outputs, origin,
                   session.duration_s, progress=False)  # fmt: skip
    elapsed = time.perf_counter() - t0
    n = len(outputs.predictions)
    print(f"{n} windows in {elapsed:.1f} s: {n / elapsed:.1f} windows/s, "
          f"{session.duration_s / elapsed:.1f}x real time at stride {args.stride} s "
          f"({recognizer.backend.label if recognizer.backend else 'no backend'})")  # fmt: skip
    for stage, stats in outputs.stages.items():
        s = stats.summary()
        if s["p50"] is not None:
            print(f"  {stage:<12} p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f} ms")
    session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
