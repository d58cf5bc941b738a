"""``agreement`` → ``precision_agreement.json``: every precision's replay against eager fp32.

A low-precision backend is checked against eager fp32 on one window when it starts; this
benchmark checks it on every window of whole sessions. Each session is replayed at ``--speed max``
through the runtime's composer (the command line's run) once per (backend, precision) on the
same windows, with the threads the runtime chooses for the model. Per session and precision:
windows, the replay's windows/s and × real time, the forward's p50 ms, top-1 agreement with eager
fp32 over the windows both predicted, and the largest |Δprobability| over every class of every
window. Sessions: the bundled demo session and held-out synthetic ones (seeds the demo model
never saw in training: 101–106 train, 201 validation, 301–302 test), or any given with
``--sessions``; the model: the bundled demo model or ``--model DIR``.

    python bench/agreement.py [--model DIR] [--sessions DIR ...] [--precisions fp32 int8]
        [--minutes 1.0] [--seeds 7 401] [--stride 0.5] [--cli]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DEMO_MODEL, RESULTS, load1, machine, write

DEMO_SESSION = Path(__file__).resolve().parents[1] / "evimae_stream" / "assets" / "demo_session"
#: (backend, precision) per --precisions value
CASES = {"fp32": ("eager", "fp32"), "bf16": ("eager", "bf16"), "int8": ("int8", "int8")}


class _Probs:
    """A sink keeping each window's full probability vector (None: no prediction)."""

    def __init__(self) -> None:
        self.probs: dict[int, np.ndarray | None] = {}

    def emit(self, pred) -> None:
        self.probs[pred.index] = None if pred.label is None else np.asarray(pred.probs)


def replay(model_dir: Path, session_path: Path, precision: str, stride_s: float = 0.5) -> dict:
    """One ``--speed max`` replay of ``session_path`` in ``precision``: its probabilities, speed
    and the backend that ran."""
    from evimae_stream.artifact import load_artifact
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel
    from evimae_stream.sessions import open_session

    backend, prec = CASES[precision]
    model, meta = load_artifact(model_dir)
    sink = _Probs()
    config = RuntimeConfig(backend=backend, precision=prec, stride_s=stride_s, timed_auto=False)
    composer = Composer(LoadedModel(model, ModelSpec.from_meta(meta)), config, Hooks(sinks=[sink]))
    session = open_session(session_path)
    t0 = time.perf_counter()
    result = composer.replay(session, None)
    elapsed = time.perf_counter() - t0
    duration = session.duration_s
    session.close()
    forward = result.summary["stages_ms"].get("forward", {})
    return {
        "probs": sink.probs,
        "backend": result.summary["backend"],
        "backend_note": result.summary["backend_note"],
        "threads": result.summary["threads"]["count"],
        "windows": len(sink.probs),
        "windows_per_s": round(len(sink.probs) / elapsed, 2),
        "x_real_time": round(duration / elapsed, 2),
        "forward_p50_ms": forward.get("p50"),
        "load_avg_1m": load1(),
    }


def cli_replay(model_dir: Path, session_path: Path, precision: str, stride_s: float) -> dict:
    """One ``--speed max`` replay through the command line (a subprocess of this tree's
    ``evimae_stream``): wall and CPU seconds per window, the forward's p50, the backend."""
    backend, prec = CASES[precision]
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "run.jsonl"
        cmd = [sys.executable, "-c", "import sys; from evimae_stream.cli import main; "
               "sys.exit(main())", "--model", str(model_dir), "--replay", str(session_path),
               "--speed", "max", "--backend", backend, "--precision", prec, "--stride",
               str(stride_s), "--jsonl", str(jsonl), "--eval", "--eval-out", tmp]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = json.loads(next(Path(tmp).glob("*.eval.json")).read_text())
    summary = report["summary"]
    windows = max(summary["predicted"], 1)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "cli_backend": summary["backend"],
        "cli_windows": summary["predicted"],
        "cli_wall_s": round(wall, 2),
        "cli_wall_s_per_window": round(wall / windows, 3),
        "cli_cpu_s_per_window": round(cpu / windows, 3),
        "cli_forward_p50_ms": summary["stages_ms"].get("forward", {}).get("p50"),
        "cli_backend_check": summary.get("backend_check"),
    }


def compare(ref: dict[int, np.ndarray | None], got: dict[int, np.ndarray | None]) -> dict:
    """Top-1 agreement and max |Δp| over the windows both runs predicted."""
    both = [i for i in ref if ref[i] is not None and got.get(i) is not None]
    if not both:
        return {"windows_compared": 0}
    agree = sum(int(np.argmax(ref[i]) == np.argmax(got[i])) for i in both)
    dp = [float(np.max(np.abs(ref[i] - got[i]))) for i in both]
    return {
        "windows_compared": len(both),
        "top1_agreement": round(agree / len(both), 4),
        "max_abs_dprob": round(max(dp), 5),
        "median_max_abs_dprob": round(statistics.median(dp), 5),
    }


def held_out_sessions(seeds: list[int], minutes: float, tmp: Path) -> list[Path]:
    """Synthetic sessions of ``seeds`` at the demo session's frame size."""
    from evimae_stream.synthetic.session import generate_session

    paths = []
    for seed in seeds:
        out = tmp / f"synth_{seed}"
        generate_session(out, actions=6, minutes=minutes, seed=seed)
        paths.append(out)
    return paths


def bench_agreement(
    model_dir: Path,
    sessions: list[Path],
    precisions: list[str],
    out_dir: Path,
    stride_s: float,
    cli: bool = False,
) -> dict:
    """Replay every session in every precision; rows against the fp32 replay of the session."""
    rows = []
    print(
        f"{'session':22s} {'precision':9s} {'backend':16s} thr windows  win/s  ×real  "
        "fwd p50 ms  top-1 agree  max|Δp|"
    )
    for path in sessions:
        ref = None
        for prec in ["fp32", *(p for p in precisions if p != "fp32")]:
            r = replay(model_dir, path, prec, stride_s)
            probs = r.pop("probs")
            if prec == "fp32":
                ref = probs
            row = {"session": str(path), "precision": prec, **r, **compare(ref, probs)}
            if cli:
                row |= cli_replay(model_dir, path, prec, stride_s)
                print(
                    f"  through the CLI: {row['cli_windows']} windows, "
                    f"{row['cli_wall_s_per_window']:.3f} s wall and "
                    f"{row['cli_cpu_s_per_window']:.3f} s CPU per window, forward p50 "
                    f"{row['cli_forward_p50_ms'] or float('nan'):.1f} ms ({row['cli_backend']})"
                )
            rows.append(row)
            print(
                f"{path.name[:22]:22s} {prec:9s} {r['backend'][:16]:16s} {r['threads']:3d} "
                f"{r['windows']:7d} {r['windows_per_s']:6.1f} {r['x_real_time']:6.1f} "
                f"{r['forward_p50_ms'] or float('nan'):10.1f}  "
                f"{row.get('top1_agreement', float('nan')):11.4f}  "
                f"{row.get('max_abs_dprob', float('nan')):.4f}"
            )
    doc = {"machine": machine(), "model": str(model_dir), "stride_s": stride_s, "results": rows}
    write(doc, "precision_agreement.json", out_dir)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--sessions", type=Path, nargs="*", help="default: demo + held-out synth")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=list(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 401])
    parser.add_argument("--minutes", type=float, default=1.0, help="held-out session length")
    parser.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--cli", action="store_true", help="also time each replay via the CLI")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sessions = args.sessions
        if sessions is None:
            sessions = [DEMO_SESSION, *held_out_sessions(args.seeds, args.minutes, Path(tmp))]
        bench_agreement(args.model, sessions, args.precisions, args.out_dir, args.stride, args.cli)


if __name__ == "__main__":
    main()
