"""``replay`` → ``replay_throughput.json``: ``--speed max`` replay throughput, IMU-only and
multimodal (see ``bench/run_all.py``); :func:`replay_max` is one such replay."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from common import bf16_or_none, demo_artifact, load1, machine, write


class _FirstPrediction:
    """An extra sink: when the first prediction with a label arrived, and ``on_emit(pred,
    session ns)`` for every prediction."""

    def __init__(self, on_emit=None) -> None:
        self.at: float | None = None
        self.on_emit = on_emit

    def emit(self, pred) -> None:
        if self.at is None and pred.label is not None:
            self.at = time.perf_counter()
        if self.on_emit is not None:
            self.on_emit(pred, pred.tick_ns - pred.origin_ns)


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
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel
    from evimae_stream.sessions import open_session

    session = open_session(session_path)
    model, meta = load_artifact(artifact)
    spec = ModelSpec.from_meta(meta)
    config = RuntimeConfig(
        stride_s=stride_s,
        backend=backend,
        precision=precision,
        threads=threads,
        cache_dir=cache_dir,
        duration_s=end_s,
        timed_auto=False,
    )
    first = _FirstPrediction(on_emit)
    composer = Composer(LoadedModel(model, spec), config, Hooks(sinks=[first]))
    duration = session.duration_s if end_s is None else min(end_s, session.duration_s)
    t0 = time.perf_counter()
    outputs = composer.replay(session, None, overlap=overlap).outputs
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
        "first_prediction_ms": None if first.at is None else round((first.at - t0) * 1e3, 1),
        "stages_ms": {s: p.summary() for s, p in outputs.stages.items() if p.count},
        "threads": threads,
        "backend": composer.recognizer.backend.label if composer.recognizer.backend else None,
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
