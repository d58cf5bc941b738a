"""``live`` → ``pipeline_overhead.json``: the pipeline overhead of live synthetic runs of the
demo model (see ``bench/run_all.py`` for the definitions)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from common import _NS, demo_artifact, load1, stats_ms


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


class _StageTimes:
    """The live benchmark's view of a run, through the composer's hooks: the host time each
    window's cut started (the last assembly of its index), when it was handed over, when its
    forward started and its prediction was made (stage hook), and every prediction with a label
    with the time it reached the sinks (an extra sink)."""

    def __init__(self) -> None:
        self.cut_at: dict[int, int] = {}
        self.queued_at: dict[int, float] = {}
        self.infer_start: dict[int, float] = {}
        self.infer_end: dict[int, float] = {}
        self.emitted: list[tuple] = []

    def stage(self, event: str, index: int) -> None:
        if event == "assemble":
            self.cut_at[index] = time.monotonic_ns()
        elif event == "assembled":
            self.queued_at[index] = time.perf_counter()
        elif event == "forward":
            self.infer_start[index] = time.perf_counter()
        elif event == "postprocessed":
            self.infer_end[index] = time.perf_counter()

    def emit(self, pred) -> None:
        if pred.label is not None and pred.newest_ns is not None:
            self.emitted.append((pred, time.perf_counter()))


def _overhead_parts(timing: _StageTimes, guard_ns: int) -> tuple[dict, dict, int]:
    """Per predicted window (less the first two, which warm the caches): latency, its parts and
    the pipeline's overhead in ms (see ``bench/run_all.py``); the modes and how many windows
    waited behind another's forward."""
    cut_at, infer_start, infer_end = timing.cut_at, timing.infer_start, timing.infer_end
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
    for pred, emit_pc in timing.emitted[2:]:  # the first windows warm the caches
        now_ns = pred.newest_ns + round(pred.latency_ms * 1e6)  # the emission's host time
        fwd = pred.stages_ms.get("forward", 0.0)
        parts["latency"].append((now_ns - pred.newest_ns) / 1e6)
        parts["data_age"].append((pred.tick_ns - pred.newest_ns) / 1e6)
        parts["forward"].append(fwd)
        parts["overhead"].append((now_ns - pred.tick_ns - guard_ns) / 1e6 - fwd)
        parts["cut_late"].append((cut_at.get(pred.index, 0) - pred.tick_ns - guard_ns) / 1e6)
        for stage in ("assemble", "preprocess", "postprocess"):
            parts[stage].append(pred.stages_ms.get(stage, 0.0))
        parts["work"].append(sum(parts[s][-1] for s in ("assemble", "preprocess", "postprocess")))
        start = infer_start.get(pred.index, emit_pc)
        queued = timing.queued_at.get(pred.index, start)
        parts["handover_wait"].append((start - queued) * 1e3)
        # it waited behind another if the previous window's forward was still running
        earlier = [i for i in infer_end if i < pred.index]
        waited += bool(earlier) and infer_end[max(earlier)] > queued
        parts["emit_delay"].append(
            (emit_pc - start) * 1e3 - fwd - pred.stages_ms.get("postprocess", 0.0)
        )
        modes[pred.mode] = modes.get(pred.mode, 0) + 1
    return parts, modes, waited


def bench_live(
    seconds: float,
    tmp: Path,
    precision: str | None = None,
    backend: str = "eager",
    camera: str = "file",
) -> dict:
    """Pipeline overhead of a live synthetic run (see ``bench/run_all.py`` for the definitions).

    ``camera``: ``file`` — OpenCV's capture of a looping video file at its 30 fps (what a USB
    camera costs the process: decoding outside the interpreter lock); ``synthetic`` — the
    simulated wearer's renderer (about 2.5 ms of numpy per frame under the lock: a simulator's
    cost, not the pipeline's)."""

    from drivers.camera import CameraConfig
    from evimae_stream.artifact import load_artifact
    from evimae_stream.runtime.backends import ModelInputs, select_backend
    from evimae_stream.runtime.backends.select import complete_example
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel, plan_sources
    from evimae_stream.types import PLACEMENTS

    model, meta = load_artifact(demo_artifact(tmp))
    spec = ModelSpec.from_meta(meta)
    config = RuntimeConfig(
        stride_s=0.5, backend=backend, precision=precision, threads=1, cache_dir=tmp / "engines",
        duration_s=seconds,
    )  # fmt: skip
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
    timing = _StageTimes()
    plan = plan_sources([f"{p}=synthetic?seed=11&rate=50" for p in PLACEMENTS], "synthetic")
    if camera == "file":  # made before the clock starts
        plan = dataclasses.replace(plan, camera=CameraConfig(str(camera_video(tmp)), loop=True))
    hooks = Hooks(sinks=[timing], on_stage=timing.stage)
    composer = Composer(LoadedModel(model, spec), config, hooks, backend=prepared)
    result = composer.live(plan)
    live, outputs = result.live, result.outputs
    parts, modes, waited = _overhead_parts(timing, round(config.guard_s * _NS))
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
