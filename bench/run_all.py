"""Every benchmark of evimae-stream in one command: JSON under bench/results/, tables on stdout.

    python bench/run_all.py [--quick] [--only forward lock live replay memory] [--out-dir DIR]

``--quick`` is a smoke run (~1–2 min on the loaded 2-core dev machine): fewer cases, shorter runs.
Every result row carries the 1-minute load average at the time it was measured: this machine is
shared, so compare variants as ratios within one run, never across runs.

Sections (each writes one JSON file; one module per benchmark, next to this file, with
``common.py`` for what they share):

- ``forward`` → ``model_forward.json``: the GEMM peak of fp32, bf16 and int8 at 1 and 2
  threads (``bench/gemm_peak.py``), then one forward per variant × mode × backend (eager, and
  int8 for int8; torch.compile and the AOTInductor package for evimae_tiny at 1 thread and
  evimae_small at 2, not in --quick) × precision (fp32, bf16, int8; a case predicted to take
  longer than its budget at its precision's peak, as emulated bf16 does on CPUs without native
  bf16, is a row saying so) × torch threads (1, 2) × batch (1; 8 for tiny, reported per
  window). Median, p95, GFLOP/s (FlopCounterMode) and the fraction of the GEMM peak of the
  row's precision at the row's thread count, measured in the same run. Low-precision and
  compiled rows carry their difference from eager fp32 batch 1 (max |Δlogit|, top-1
  agreement). ``bench/agreement.py`` (not part of this run) replays whole sessions per
  precision: top-1 agreement and max |Δprobability| against fp32 on every window.
- ``lock`` → ``interpreter_lock.json``: the demo model's forward alone and next to one busy
  Python thread, and how much of its speed that thread keeps: eager, the AOT package through the
  runtime's lock-free runner, and the same package through torch's loader.
- ``live`` → ``pipeline_overhead.json``: LIVE runs (four synthetic IMUs and a head camera, real
  threads, real time) of the bundled demo model (evimae_tiny; a random evimae_tiny artifact when
  it is missing). The camera is OpenCV's capture of a looping 320×240 30 fps video of the
  simulated wearer, as a USB camera costs the process (decoding outside the interpreter lock);
  one more run uses the simulated wearer's renderer instead, whose ~2.5 ms of numpy per frame
  under the lock is a simulator's cost, not the pipeline's. Per predicted window, with ``tick``
  its scheduled time, ``guard`` the configured cut delay after the tick
  (``RuntimeConfig.guard_s``), ``newest`` the stamp of its newest sample and ``emit`` the
  emission time:

  * latency = emit − newest (what the runtime reports);
  * the scheduler preprocesses each window halfway through the guard and uses that at the cut
    when nothing in the window changed (counted: used / redone);
  * data_age = tick − newest (sensor period and arrival jitter: not the pipeline's doing);
  * **overhead = emit − (tick + guard) − forward**: the pipeline's own time from the moment it
    may cut the window to the emission, less the model: scheduler wake-up lateness, gate release,
    assembly, preprocessing, the hand-over wait, postprocessing and the emission. So
    latency = data_age + guard + forward + overhead;
  * its parts: cut_late = the cut's start − (tick + guard) (the scheduler's wake-up); assemble,
    preprocess (at the cut: comparing with the early pass) and postprocess; handover_wait =
    inference start − window assembled (the inference thread's wake-up); emit_delay = what is
    left between the end of postprocessing and the emission; ``worst_overhead`` lists the parts
    of the three windows with the most overhead;
  * a window "waited behind another" when it was handed over while the previous window's
    forward was still running; skipped windows are counted too.

  Runs: eager fp32 and bf16, and the AOTInductor package (``--backend aot``) in both, built
  before the run; then ``aot`` with the renderer camera.

- ``replay`` → ``replay_throughput.json``: ``--speed max`` replays (virtual clock) of a 5-minute
  IMU-only synthetic session and of a multimodal one with the demo model: windows/s and × real
  time at stride 0.5 s (the whole replay, including the time to the first prediction, which also
  pays for choosing, loading and verifying the backend; reported on its own too), stage p50/p95,
  medians of interleaved rounds; A/B within the run: fp32
  vs bf16, the overlapped reader thread vs one window after the other, torch threads 1 vs 2,
  eager vs the AOT package (built before the timed rounds).
- ``memory`` → ``memory.json``: a long accelerated IMU-only replay (60 min of session time;
  10 min in --quick; bf16 where native, as ``auto`` runs it) sampling the process RSS against
  session time: RSS after 5 min vs at the end, and the peak (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from common import RESULTS, bf16_or_none, machine, write
from forward import bench_forward
from live import bench_live
from lock import bench_lock
from memory import bench_memory
from model_latency import cpu_flags, cpu_model
from replay import bench_replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer, shorter cases")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["forward", "lock", "live", "replay", "memory"],
        default=["forward", "lock", "live", "replay", "memory"],
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--live-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="evimae_bench_"))
    print(f"load average {os.getloadavg()}; CPU {cpu_model()} {cpu_flags()}")
    t0 = time.perf_counter()
    if "forward" in args.only:
        bench_forward(args.quick, args.out_dir, tmp)
    if "lock" in args.only:
        bench_lock(args.quick, args.out_dir, tmp)
    if "live" in args.only:
        seconds = args.live_seconds or (10.0 if args.quick else 60.0)
        precs = [p for p in ("fp32", bf16_or_none()) if p]
        runs = [bench_live(seconds, tmp, p, b) for b in ("eager", "aot") for p in precs]
        runs.append(bench_live(seconds, tmp, precs[-1], "aot", camera="synthetic"))
        write({"machine": machine(), "runs": runs}, "pipeline_overhead.json", args.out_dir)
    if "replay" in args.only:
        bench_replay(args.quick, args.out_dir, tmp)
    if "memory" in args.only:
        bench_memory(args.quick, args.out_dir, tmp)
    print(f"done in {time.perf_counter() - t0:.0f} s; threads alive: {threading.active_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
