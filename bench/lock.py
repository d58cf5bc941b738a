"""``lock`` → ``interpreter_lock.json``: the demo model's forward alone and next to one busy
Python thread (see ``bench/run_all.py``)."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import torch
from common import demo_artifact, load1, machine, write


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
    from evimae_stream.runtime.live import SWITCH_INTERVAL_S

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
