"""``memory`` → ``memory.json``: RSS over a long accelerated IMU-only replay (see
``bench/run_all.py``)."""

from __future__ import annotations

import time
from pathlib import Path

from common import _NS, bf16_or_none, demo_artifact, load1, machine, write
from replay import replay_max


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
