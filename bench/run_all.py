"""Every benchmark of evimae-stream in one command: JSON under bench/results/, tables on stdout.

    python bench/run_all.py [--quick] [--only forward lock live replay memory] [--out-dir DIR]

``--quick`` is a smoke run (~1–2 min on the loaded 2-core dev machine): fewer cases, shorter runs.
Every result row carries the 1-minute load average at the time it was measured: this machine is
shared, so compare variants as ratios within one run, never across runs.

Sections (each writes one JSON file):

- ``forward`` → ``model_forward.json``: one forward per variant × mode × backend (eager;
  torch.compile and the AOTInductor package for evimae_tiny at 1 thread and evimae_small at 2,
  not in --quick) × precision
  (fp32; bf16 only where the CPU has AMX or AVX512-BF16, else a row saying "unsupported") ×
  torch threads (1, 2) × batch (1; 8 for tiny, reported per window). Median, p95, GFLOP/s
  (FlopCounterMode) and the fraction of the matmul peak of the row's dtype at the row's thread
  count, measured in the same run (``bench/model_latency.py``'s functions). Non-eager and
  batched rows carry their difference from eager fp32 batch 1 (max |Δlogit|, top-1 agreement).
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
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_latency import (
    _inputs,
    count_gflop,
    cpu_flags,
    cpu_model,
    matmul_peak,
    percentile,
)

RESULTS = Path(__file__).resolve().parent / "results"
DEMO_MODEL = Path(__file__).resolve().parents[1] / "evimae_stream" / "assets" / "demo_model"
_NS = 1_000_000_000


def load1() -> float:
    """The 1-minute load average (what else runs on this shared machine)."""
    return round(os.getloadavg()[0], 2)


def machine() -> dict:
    """What the numbers were measured on."""
    import platform

    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_avg_1m_at_start": load1(),
    }


def bf16_native() -> bool:
    """Whether bf16 matmuls run natively here (AMX tiles or AVX512-BF16)."""
    from evimae_stream.device import cpu_has_amx

    return cpu_has_amx() or "avx512_bf16" in cpu_flags()


def bf16_or_none() -> str | None:
    """ "bf16" where it runs natively, else None (fp32): the precision auto would pick."""
    return "bf16" if bf16_native() else None


def stats_ms(xs: list[float]) -> dict:
    """p50/p95/p99/max of a list of milliseconds (nearest rank)."""
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), 3),
        "p95": round(percentile(xs, 95), 3),
        "p99": round(percentile(xs, 99), 3),
        "max": round(max(xs), 3),
    }


def write(doc: dict, name: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def demo_artifact(tmp: Path) -> Path:
    """The bundled demo model, or a random evimae_tiny artifact with the same settings."""
    if (DEMO_MODEL / "model.json").exists():
        return DEMO_MODEL
    from evimae_stream.artifact import ModelMeta, save_artifact
    from evimae_stream.model import create_model

    torch.manual_seed(0)
    classes = ["idle", "walking", "jogging", "waving", "stirring"]
    model = create_model("evimae_tiny", len(classes))
    meta = ModelMeta(
        variant="evimae_tiny",
        model_config=model.cfg.to_dict(),
        classes=classes,
        imu_rate_hz=50.0,
        window_s=2.0,
        norm_mean=-51.17,
        norm_std=26.19,
        num_frames=model.cfg.num_frames,
        img_size=model.cfg.img_size,
        video_span_s=2.0,
    )
    return save_artifact(model, meta, tmp / "tiny_model")


# ------------------------------------------------------------------------------- forward


def _time_backend(backend, inputs, mode: str, repeats: int, budget_s: float) -> list[float]:
    """Wall seconds of forwards after one warm-up: ``repeats`` or until ``budget_s`` (≥ 3)."""
    backend.forward(inputs, mode)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        backend.forward(inputs, mode)
        times.append(time.perf_counter() - t0)
    return times


def bench_forward(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """Model forward per variant × mode × backend × precision × threads × batch."""
    from evimae_stream.model import create_model
    from evimae_stream.runtime.backends import ModelInputs
    from evimae_stream.runtime.backends.aot import AotBackend
    from evimae_stream.runtime.backends.compiled import CompiledBackend
    from evimae_stream.runtime.backends.eager import EagerBackend

    native_bf16 = bf16_native()
    peaks: dict[str, dict] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            if prec == "bf16" and not native_bf16:
                continue
            peaks[f"{prec}-t{threads}"] = p = matmul_peak(dtype, "cpu")
            print(f"{prec} matmul peak, {threads} thread(s): {p['gflops']:.1f} GFLOP/s "
                  f"({p['size']}^3), load {load1()}")  # fmt: skip
    variants = ["evimae_tiny"] if quick else ["evimae_tiny", "evimae_small"]
    modes = ["multimodal", "imu_only"] if quick else ["multimodal", "imu_only", "video_only"]
    repeats, budget = (8, 3.0) if quick else (30, 15.0)
    rows = []
    header = f"{'variant':13s} {'mode':10s} {'backend':8s} {'prec':5s} thr  B    p50 ms    p95 ms"
    print(header + "  GFLOP/s  %peak  vs eager")
    for variant in variants:
        torch.manual_seed(0)
        model = create_model(variant, 18).eval()
        cfg = model.cfg
        for mode in modes:
            gflop = count_gflop(model, cfg, mode)
            imu, video = _inputs(cfg, mode, "cpu", torch.float32)
            single = ModelInputs(imu, video)
            threads_list = [1, 2]
            batches = [1, 8] if variant == "evimae_tiny" else [1]
            ref = None
            for threads in threads_list:
                torch.set_num_threads(threads)
                backends = ["eager"]
                if not quick and threads == (1 if variant == "evimae_tiny" else 2):
                    backends += ["compile", "aot"]
                for bname in backends:
                    for prec in ("fp32", "bf16"):
                        row = {
                            "variant": variant,
                            "mode": mode,
                            "backend": bname,
                            "precision": prec,
                            "threads": threads,
                            "gflop_per_window": round(gflop, 3),
                        }
                        if prec == "bf16" and not native_bf16:
                            row["unsupported"] = "no AMX/avx512_bf16 (bf16 is emulated, ~1 GFLOP/s)"
                            rows.append(row | {"batch": 1, "load_avg_1m": load1()})
                            continue
                        for batch in batches if bname == "eager" else [1]:
                            if batch == 1:
                                inputs = single
                            else:
                                inputs = ModelInputs(
                                    None if imu is None else imu.repeat(batch, 1, 1, 1),
                                    None if video is None else video.repeat(batch, 1, 1, 1, 1),
                                )
                            if bname == "compile":
                                # every case compiles the same forward code: without a reset
                                # Dynamo's recompile limit (8) silently leaves later cases eager
                                torch._dynamo.reset()
                                backend = CompiledBackend(model, prec)
                            elif bname == "aot":
                                backend = AotBackend(
                                    model, prec, model_id=variant, cache_dir=tmp / "engines"
                                )
                            else:
                                backend = EagerBackend(model, prec)
                            t_prep = time.perf_counter()
                            try:
                                backend.prepare(inputs, (mode,))
                                out = backend.forward(inputs, mode)
                            except Exception as exc:  # recorded; the run goes on
                                r = row | {"batch": batch, "error": f"{type(exc).__name__}: {exc}"}
                                rows.append(r)
                                print(
                                    f"{variant:13s} {mode:10s} {bname:8s} {prec:5s} failed: {exc}"
                                )
                                continue
                            prep_s = time.perf_counter() - t_prep
                            times = _time_backend(backend, inputs, mode, repeats, budget)
                            p50 = statistics.median(times) / batch
                            peak = peaks[f"{prec}-t{threads}"]["gflops"]
                            r = row | {
                                "batch": batch,
                                "n": len(times),
                                "p50_ms_per_window": round(p50 * 1e3, 3),
                                "p95_ms_per_window": round(percentile(times, 95) / batch * 1e3, 3),
                                "gflops": round(gflop / p50, 2),
                                "peak_fraction": round(gflop / p50 / peak, 3),
                                "load_avg_1m": load1(),
                            }
                            if bname != "eager":
                                r["first_call_s"] = round(prep_s, 1)
                            if prec == "fp32" and bname == "eager" and batch == 1:
                                if ref is None:
                                    ref = out
                            elif ref is not None:
                                first = out[:1]
                                r["max_abs_logit_diff_vs_eager_fp32"] = float(
                                    (first - ref).abs().max()
                                )
                                r["top1_agree_vs_eager_fp32"] = bool(
                                    (out.argmax(-1) == ref.argmax(-1)).all()
                                )
                            rows.append(r)
                            diff = r.get("max_abs_logit_diff_vs_eager_fp32")
                            print(
                                f"{variant:13s} {mode:10s} {bname:8s} {prec:5s} {threads:3d} "
                                f"{batch:2d} {r['p50_ms_per_window']:9.2f} "
                                f"{r['p95_ms_per_window']:9.2f} {r['gflops']:8.1f} "
                                f"{100 * r['peak_fraction']:5.1f}  "
                                f"{'' if diff is None else f'{diff:.2e}'}"
                            )
        del model
    for r in rows:
        if "unsupported" in r and r["threads"] == 1 and r["backend"] == "eager":
            print(f"{r['variant']:13s} {r['mode']:10s} bf16: unsupported: {r['unsupported']}")
    doc = {
        "machine": machine(),
        "matmul_peaks": peaks,
        "bf16_native": native_bf16,
        "results": rows,
    }
    write(doc, "model_forward.json", out_dir)
    return doc


# ------------------------------------------------------------------------------- live


def camera_video(tmp: Path) -> Path:
    """A 20 s 320×240 30 fps head-camera video of the simulated wearer (MPEG-4), made once."""
    import cv2

    from evimae_stream.synthetic import SyntheticWearer

    path = tmp / "camera.mp4"
    if not path.exists():
        wearer = SyntheticWearer(seed=11, actions=2)
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
        for i in range(600):
            out.write(cv2.cvtColor(wearer.render_frame(i / 30.0), cv2.COLOR_RGB2BGR))
        out.release()
    return path


def bench_live(
    seconds: float,
    tmp: Path,
    precision: str | None = None,
    backend: str = "eager",
    camera: str = "file",
) -> dict:
    """Pipeline overhead of a live synthetic run (see the module doc for the definitions).

    ``camera``: ``file`` — OpenCV's capture of a looping video file at its 30 fps (what a USB
    camera costs the process: decoding outside the interpreter lock); ``synthetic`` — the
    simulated wearer's renderer (about 2.5 ms of numpy per frame under the lock: a simulator's
    cost, not the pipeline's)."""
    from drivers.uri import parse_imu_ports
    from evimae_stream.artifact import load_artifact
    from evimae_stream.clock import VirtualClock
    from evimae_stream.commands.run import make_live_drivers
    from evimae_stream.runtime.backends import ModelInputs, select_backend
    from evimae_stream.runtime.backends.select import complete_example
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.pipeline import (
        LiveRun,
        Outputs,
        Recognizer,
        RuntimeConfig,
        make_rig,
    )
    from evimae_stream.types import PLACEMENTS

    model, meta = load_artifact(demo_artifact(tmp))
    spec = ModelSpec.from_meta(meta, model)
    config = RuntimeConfig(
        stride_s=0.5, backend=backend, precision=precision, threads=1, cache_dir=tmp / "engines"
    )
    torch.set_num_threads(1)
    # built (or loaded) before the run, on a stand-in window: an AOT compile is not a window
    prepared = select_backend(
        backend,
        precision,
        model,
        complete_example(ModelInputs(None, None), model),
        spec.modes,
        cache_dir=config.cache_dir,
    )
    infer_start: dict[int, tuple[float, float]] = {}
    infer_end: dict[int, float] = {}
    emitted: list[tuple] = []

    cut_at: dict[int, int] = {}  # host time the cut's assembly started (the last call per index)

    class TimedRecognizer(Recognizer):
        def assemble(self, buffer, tick, index, early=None):
            cut_at[index] = time.monotonic_ns()
            return super().assemble(buffer, tick, index, early)

        def infer(self, job, origin_ns):
            infer_start[job.index] = (time.perf_counter(), job.queued_at)
            try:
                return super().infer(job, origin_ns)
            finally:
                infer_end[job.index] = time.perf_counter()

    class TimedOutputs(Outputs):
        def emit(self, pred, now_ns):
            super().emit(pred, now_ns)
            if pred.label is not None and pred.newest_ns is not None:
                emitted.append((pred, now_ns, time.perf_counter()))

    imu_cfgs = parse_imu_ports([f"{p}=synthetic?seed=11&rate=50" for p in PLACEMENTS])
    rates = dict.fromkeys(imu_cfgs, 50.0)
    video = str(camera_video(tmp)) if camera == "file" else None  # made before the clock starts
    origin = time.monotonic_ns()
    tick_clock = VirtualClock(origin)
    buffer, gates = make_rig(spec, rates, 30.0, tick_clock)
    drivers = make_live_drivers(imu_cfgs, "synthetic", gates.imu, gates.camera)
    if camera == "file":
        from drivers.camera import CameraConfig, CameraDriver

        drivers["camera"] = CameraDriver(CameraConfig(video, loop=True), gates.camera)
    for d in drivers.values():
        d.connect()
    buffer.camera.nominal_rate_hz = 30.0
    recognizer = TimedRecognizer(model, spec, config, backend=prepared)
    outputs = TimedOutputs([], timings=True)
    live = LiveRun(buffer, gates, tick_clock, recognizer, outputs, origin)
    for d in drivers.values():
        d.start()
    try:
        live.run(lambda: (time.monotonic_ns() - origin) / _NS >= seconds)
    finally:
        for d in drivers.values():
            d.stop()
    guard_ns = round(config.guard_s * _NS)
    parts: dict[str, list[float]] = {
        k: []
        for k in (
            "latency",
            "data_age",
            "forward",
            "overhead",
            "cut_late",
            "work",
            "assemble",
            "preprocess",
            "postprocess",
            "handover_wait",
            "emit_delay",
        )
    }
    modes: dict[str, int] = {}
    waited = 0
    for pred, now_ns, emit_pc in emitted[2:]:  # the first windows warm the caches
        fwd = pred.stages_ms.get("forward", 0.0)
        parts["latency"].append((now_ns - pred.newest_ns) / 1e6)
        parts["data_age"].append((pred.tick_ns - pred.newest_ns) / 1e6)
        parts["forward"].append(fwd)
        parts["overhead"].append((now_ns - pred.tick_ns - guard_ns) / 1e6 - fwd)
        parts["cut_late"].append((cut_at.get(pred.index, 0) - pred.tick_ns - guard_ns) / 1e6)
        for stage in ("assemble", "preprocess", "postprocess"):
            parts[stage].append(pred.stages_ms.get(stage, 0.0))
        parts["work"].append(sum(parts[s][-1] for s in ("assemble", "preprocess", "postprocess")))
        start, queued = infer_start.get(pred.index, (emit_pc, emit_pc))
        parts["handover_wait"].append((start - queued) * 1e3)
        # it waited behind another if the previous window's forward was still running
        earlier = [i for i in infer_end if i < pred.index]
        waited += bool(earlier) and infer_end[max(earlier)] > queued
        parts["emit_delay"].append(
            (emit_pc - start) * 1e3 - fwd - pred.stages_ms.get("postprocess", 0.0)
        )
        modes[pred.mode] = modes.get(pred.mode, 0) + 1
    doc = {
        "backend": prepared.label,
        "precision": precision or "fp32",
        "model": str(demo_artifact(tmp)),
        "seconds": seconds,
        "camera": camera,
        "stride_s": config.stride_s,
        "guard_ms": config.guard_s * 1e3,
        "threads": config.threads,
        "windows_predicted": len(parts["latency"]),
        "modes": modes,
        "skipped": outputs.skipped,
        "late_ticks": live.late_ticks,
        "preprocessed_early": {"used": live.early_hits, "redone": live.early_misses},
        "windows_that_waited_behind_another": waited,
        "ms": {k: stats_ms(v) for k, v in parts.items()},
        # the three windows with the most overhead, every part of theirs (where it went)
        "worst_overhead": [
            {k: round(v[i], 2) for k, v in parts.items()}
            for i in sorted(range(len(parts["overhead"])), key=lambda i: -parts["overhead"][i])[:3]
        ],
        "load_avg_1m": load1(),
    }
    print(
        f"live ({prepared.label}, {camera} camera) {seconds:.0f} s, "
        f"{len(parts['latency'])} windows {modes}, skipped {outputs.skipped},"
        f" waited behind another {waited}, preprocessed early {live.early_hits}"
        f" (redone {live.early_misses}), load {doc['load_avg_1m']}"
    )
    for k, s in doc["ms"].items():
        if s.get("n"):
            print(f"  {k:14s} p50 {s['p50']:8.2f}  p99 {s['p99']:8.2f}  max {s['max']:8.2f} ms")
    for w in doc["worst_overhead"]:
        print("  worst:", " ".join(f"{k} {v}" for k, v in w.items() if k != "latency"))
    return doc


# ------------------------------------------------------------------------------- replay


def replay_max(
    session_path: Path,
    artifact: Path,
    threads: int = 1,
    on_emit=None,
    end_s: float | None = None,
    precision: str | None = None,
    overlap: bool = True,
    stride_s: float = 0.5,
    backend: str = "eager",
    cache_dir: Path | None = None,
) -> dict:
    """One ``--speed max`` replay; windows/s, × real time and stage percentiles."""
    from evimae_stream.artifact import load_artifact
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.pipeline import (
        Outputs,
        Recognizer,
        RuntimeConfig,
        replay_session_max,
    )
    from evimae_stream.sessions import open_session

    session = open_session(session_path)
    model, meta = load_artifact(artifact)
    spec = ModelSpec.from_meta(meta, model)
    config = RuntimeConfig(
        stride_s=stride_s,
        backend=backend,
        precision=precision,
        threads=threads,
        cache_dir=cache_dir,
        timed_auto=False,
    )
    origin = int(session.t0_ns or 0)

    class HookedOutputs(Outputs):
        first_at: float | None = None

        def emit(self, pred, now_ns):
            super().emit(pred, now_ns)
            if self.first_at is None and pred.label is not None:
                self.first_at = time.perf_counter()
            if on_emit is not None:
                on_emit(pred, now_ns - origin)

    outputs = HookedOutputs([], timings=False)
    recognizer = Recognizer(model, spec, config)
    duration = session.duration_s if end_s is None else min(end_s, session.duration_s)
    t0 = time.perf_counter()
    replay_session_max(session, recognizer, outputs, duration, progress=False, overlap=overlap)
    elapsed = time.perf_counter() - t0
    n = len(outputs.predictions)
    session.close()
    return {
        "session_s": round(duration, 1),
        "windows": n,
        "modes": dict(outputs.modes),
        "wall_s": round(elapsed, 2),
        "windows_per_s": round(n / elapsed, 2),
        "x_real_time": round(duration / elapsed, 2),
        "ms_per_window": round(elapsed / n * 1e3, 2),
        # until the first prediction: it also paid for choosing, loading and verifying the backend
        "first_prediction_ms": None
        if outputs.first_at is None
        else round((outputs.first_at - t0) * 1e3, 1),
        "stages_ms": {s: p.summary() for s, p in outputs.stages.items() if p.count},
        "threads": threads,
        "backend": recognizer.backend.label if recognizer.backend else None,
        "precision": precision or "fp32",
        "overlap": overlap,
        "load_avg_1m": load1(),
    }


def _print_replay(name: str, r: dict) -> None:
    st = r["stages_ms"]
    stages = "  ".join(f"{k} {v['p50']:.1f}" for k, v in st.items() if v.get("p50") is not None)
    print(
        f"{name:34s} {r['windows']:5d} win  {r['windows_per_s']:7.2f} win/s  "
        f"{r['x_real_time']:6.2f}x rt  {r['ms_per_window']:7.2f} ms/win  "
        f"first {r['first_prediction_ms']} ms  [{stages}]  load {r['load_avg_1m']}"
    )


def bench_replay(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """Max-speed replay throughput, IMU-only and multimodal: precision × overlapped reader vs
    one window after the other × torch threads, interleaved rounds, medians and in-run ratios."""
    from evimae_stream.synthetic import generate_session

    artifact = demo_artifact(tmp)
    # 5 min: the first prediction also pays for choosing, loading and verifying the backend
    # (~80 ms for `aot`), 14% of a 1-min replay's time; sessions worth replaying are longer
    minutes = 0.5 if quick else 5.0
    imu_path, mm_path = tmp / "imu_session", tmp / "mm_session"
    generate_session(imu_path, actions=3, minutes=minutes, seed=21, video=False)
    generate_session(mm_path, actions=3, minutes=minutes, seed=22, size=(160, 120))
    low = bf16_or_none()
    cases = [
        ("imu_only fp32 sequential", imu_path, dict(overlap=False)),
        ("imu_only fp32 overlap", imu_path, dict()),
        ("multimodal fp32 overlap", mm_path, dict()),
    ]
    if low:
        cases += [
            ("imu_only bf16 sequential", imu_path, dict(precision=low, overlap=False)),
            ("imu_only bf16 sequential threads=2", imu_path,
             dict(precision=low, overlap=False, threads=2)),
            ("imu_only bf16 overlap", imu_path, dict(precision=low)),
            ("multimodal bf16 overlap", mm_path, dict(precision=low)),
        ]  # fmt: skip
    aot = dict(backend="aot", cache_dir=tmp / "engines")
    cases += [
        (f"imu_only {low or 'fp32'} overlap aot", imu_path, dict(precision=low, **aot)),
        (f"multimodal {low or 'fp32'} overlap aot", mm_path, dict(precision=low, **aot)),
    ]
    for _, path, kw in cases:  # AOT packages are built here, not in a timed round
        if kw.get("backend") == "aot":
            replay_max(path, artifact, end_s=3.0, **kw)
    runs: dict[str, list[dict]] = {}
    for rnd in range(1 if quick else 3):  # interleaved so load changes hit every case alike
        for name, path, kw in cases:
            r = replay_max(path, artifact, **kw)
            runs.setdefault(name, []).append(r)
            _print_replay(f"{name} #{rnd}", r)
    medians = {
        name: {
            k: statistics.median(r[k] for r in rs)
            for k in ("windows_per_s", "x_real_time", "ms_per_window")
        }
        for name, rs in runs.items()
    }
    print(f"{'case (median of rounds)':36s} {'win/s':>8s} {'x real time':>12s}")
    for name, m in medians.items():
        print(f"{name:36s} {m['windows_per_s']:8.1f} {m['x_real_time']:12.1f}")

    def ratio(a: str, b: str) -> float | None:
        if a not in medians or b not in medians:
            return None
        return round(medians[a]["windows_per_s"] / medians[b]["windows_per_s"], 2)

    ratios = {
        "overlap_over_sequential_fp32": ratio("imu_only fp32 overlap", "imu_only fp32 sequential"),
        "overlap_over_sequential_bf16": ratio("imu_only bf16 overlap", "imu_only bf16 sequential"),
        "bf16_over_fp32_overlap": ratio("imu_only bf16 overlap", "imu_only fp32 overlap"),
        "threads2_over_threads1_bf16_sequential": ratio(
            "imu_only bf16 sequential threads=2", "imu_only bf16 sequential"
        ),
        "aot_over_eager_bf16_overlap": ratio("imu_only bf16 overlap aot", "imu_only bf16 overlap"),
    }
    print(f"ratios (same run): {ratios}")
    doc = {
        "machine": machine(),
        "model": str(artifact),
        "medians": medians,
        "ratios": ratios,
        "runs": runs,
    }
    write(doc, "replay_throughput.json", out_dir)
    return doc


# ------------------------------------------------------------------------------- lock


def _next_to_spinner(fn, repeats: int, spin: bool = True) -> tuple[float, float]:
    """(median ms of ``fn``, iterations/s of a pure-Python loop in a second thread meanwhile;
    without ``spin`` no such thread runs and the rate is 0)."""
    stop = threading.Event()
    count = [0]

    def spinner() -> None:
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spinner, daemon=True)
    if spin:
        thread.start()
    try:
        for _ in range(3):
            fn()
        times = []
        c0, t0 = count[0], time.perf_counter()
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rate = (count[0] - c0) / (time.perf_counter() - t0)
    finally:
        stop.set()
        if spin:
            thread.join()
    return statistics.median(times) * 1e3, rate


def bench_lock(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """The demo model's forward alone and next to one busy Python thread (the interpreter lock):
    eager, the AOT package through the runtime's lock-free runner, and the same package through
    torch's loader (which holds the lock); with the runtime's switch interval."""
    from evimae_stream.artifact import load_artifact
    from evimae_stream.runtime.backends import ModelInputs
    from evimae_stream.runtime.backends.aot import AotBackend
    from evimae_stream.runtime.backends.eager import EagerBackend
    from evimae_stream.runtime.backends.select import complete_example
    from evimae_stream.runtime.pipeline import SWITCH_INTERVAL_S

    model, _ = load_artifact(demo_artifact(tmp))
    torch.set_num_threads(1)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    example = complete_example(ModelInputs(None, None), model)
    aot = AotBackend(model, "fp32", cache_dir=tmp / "engines")
    aot.prepare(example, ("multimodal",))
    loader = torch._inductor.aoti_load_package(str(aot.cache_path("multimodal")))
    eager = EagerBackend(model, "fp32")
    cases = {
        "eager": lambda: eager.forward(example, "multimodal"),
        "aot (lock-free runner)": lambda: aot.forward(example, "multimodal"),
        "aot (torch's loader)": lambda: loader(example.imu, example.video),
    }
    repeats = 10 if quick else 30
    rows = []
    try:
        idle = _next_to_spinner(lambda: time.sleep(0.01), repeats)[1]
        print(f"busy Python thread alone: {idle / 1e6:.2f} M iterations/s")
        for name, fn in cases.items():
            alone = _next_to_spinner(fn, repeats, spin=False)[0]
            busy_ms, rate = _next_to_spinner(fn, repeats)
            rows.append({
                "case": name,
                "alone_ms": round(alone, 2),
                "next_to_busy_thread_ms": round(busy_ms, 2),
                "busy_thread_speed_fraction": round(rate / idle, 3),
            })  # fmt: skip
            print(
                f"{name:24s} alone {alone:6.1f} ms, next to a busy thread {busy_ms:6.1f} ms; "
                f"the busy thread kept {100 * rate / idle:5.1f}% of its speed"
            )
    finally:
        sys.setswitchinterval(previous)
    doc = {
        "machine": machine(),
        "model": "demo (evimae_tiny multimodal, fp32, 1 thread)",
        "busy_thread_alone_it_per_s": round(idle),
        "rows": rows,
        "load_avg_1m": load1(),
    }
    write(doc, "interpreter_lock.json", out_dir)
    return doc


# ------------------------------------------------------------------------------- memory


def _rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    vals = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, kb = line.split(":")
            vals[key] = int(kb.split()[0]) / 1024
    return round(vals.get("VmRSS", 0.0), 1), round(vals.get("VmHWM", 0.0), 1)


def bench_memory(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """RSS over a long accelerated IMU-only replay, sampled against session time."""
    from evimae_stream.synthetic import generate_session

    minutes = 10.0 if quick else 60.0
    path = tmp / "long_imu_session"
    t0 = time.perf_counter()
    generate_session(path, actions=12, minutes=minutes, seed=31, video=False)
    gen_s = time.perf_counter() - t0
    samples: list[tuple[float, float]] = []
    every_s = 30.0

    def on_emit(pred, session_ns: int) -> None:
        t = session_ns / _NS
        if not samples or t - samples[-1][0] >= every_s:
            samples.append((round(t, 1), _rss_mb()[0]))

    r = replay_max(path, demo_artifact(tmp), threads=1, on_emit=on_emit, precision=bf16_or_none())
    rss_end, hwm = _rss_mb()
    at5 = next((m for t, m in samples if t >= 300.0), None)
    last = samples[-1][1] if samples else rss_end
    doc = {
        "machine": machine(),
        "session_minutes": minutes,
        "generate_s": round(gen_s, 1),
        "replay": r,
        "rss_mb_at_5min": at5,
        "rss_mb_at_end": last,
        "growth_5min_to_end_pct": None if not at5 else round(100 * (last - at5) / at5, 2),
        "peak_rss_mb": hwm,
        "samples_session_s_rss_mb": samples,
        "load_avg_1m": load1(),
    }
    print(
        f"memory: {minutes:.0f} min session in {r['wall_s']} s ({r['x_real_time']}x): RSS "
        f"{at5} MB at 5 min, {last} MB at end ({doc['growth_5min_to_end_pct']}%), peak {hwm} MB"
    )
    write(doc, "memory.json", out_dir)
    return doc


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
