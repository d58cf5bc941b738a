"""The streaming pipeline: drivers → gates/rings → scheduler → preprocess → backend → smoothing →
sinks.

Two ways to run it, with the same per-window code (:class:`Recognizer`):

- :func:`run_live` — drivers stream in their own threads into the gates; a scheduler thread
  releases them at every tick, assembles and preprocesses the window and hands it to the inference
  thread through a latest-wins slot (skipped windows counted); the inference thread emits each
  prediction to the sinks as soon as it has it, and the caller's thread only watches for the
  end. Used for sensors and for paced replays (``--speed 1``/``N``).
- :func:`run_replay_max` (:func:`replay_session_max` sets it up for a session) — ``--speed
  max``: a virtual clock; for every tick the replay is advanced to the tick and the window
  assembled (in a reader thread, ahead of the forward), then inferred and emitted in window
  order; nothing is skipped and the output is deterministic.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import Clock, VirtualClock
from evimae_stream.errors import EvimaeError
from evimae_stream.runtime.backends import Backend, ModelInputs, select_backend
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.gate import FrameGate, Gates, ImuGate
from evimae_stream.runtime.health import Percentiles, stream_health
from evimae_stream.runtime.inputs import ModelSpec, build_inputs, softmax
from evimae_stream.runtime.policy import Plan, plan_window
from evimae_stream.runtime.scheduler import LatestSlot, due_tick, tick_ns
from evimae_stream.runtime.smoothing import Smoother
from evimae_stream.types import PLACEMENTS

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: the interpreter's thread switch interval during a live run (see :meth:`LiveRun.run`)
SWITCH_INTERVAL_S = 0.0005
#: windows the ``--speed max`` reader may assemble ahead of the forward
REPLAY_QUEUE = 4
STAGES = ("wait", "assemble", "preprocess", "forward", "postprocess")


@dataclass
class RuntimeConfig:
    """How the pipeline runs (validated): window stride, smoothing, backend choice, limits.

    ``guard_s``: how long after a tick the scheduler cuts the window, so samples stamped just
    before the tick but handed over a little later (a driver thread preempted, a camera frame
    still being decoded) are in it — which is what makes a recording replay to the same windows.
    It adds to the latency; 50 ms holds on a loaded 2-core machine.

    ``threads``: torch's intra-op thread count, set (process-wide) when a :class:`Recognizer` is
    made; None leaves torch's default (one per core). Default 1: on the 2-core dev machine under
    load the tiny models ran 3–5× faster per window with 1 thread than with 2, and one core stays
    free for the drivers and the scheduler (bench/run_all.py measures both).

    ``timed_auto``: ``--backend auto`` keeps the fastest verified backend (timed); False keeps
    the most preferred verified one without timing, so a ``--speed max`` replay writes the same
    output on every run even where two backends are close in speed.
    """

    stride_s: float = 0.5
    smooth: int = 1
    backend: str = "auto"
    precision: str | None = None
    cache_dir: Path | None = None
    duration_s: float | None = None
    guard_s: float = 0.05
    topk: int = 3
    stale_after_s: float = 1.0
    threads: int | None = 1
    timed_auto: bool = True

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError(f"threads must be a whole number >= 1 or None, got {self.threads}")
        if not 0.01 <= self.stride_s <= 60:
            raise ValueError(f"--stride must be between 0.01 and 60 s, got {self.stride_s}")
        if not isinstance(self.smooth, int) or self.smooth < 1:
            raise ValueError(f"--smooth must be a whole number >= 1, got {self.smooth}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"--duration must be > 0 s, got {self.duration_s}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")


@dataclass
class Job:
    """One assembled, preprocessed window on its way to inference."""

    index: int
    tick_ns: int
    t_ref_ns: int | None
    plan: Plan
    inputs: ModelInputs | None
    newest_ns: int | None
    health: dict
    imus: list[str]
    stages_ms: dict[str, float] = field(default_factory=dict)
    queued_at: float = 0.0
    raw: RawInputs | None = None
    #: the inputs were preprocessed early, during the guard, and were still exact at the cut
    early: bool = False


@dataclass(frozen=True)
class RawInputs:
    """What a window's model inputs are computed from (preprocessing is deterministic: equal
    raw inputs give equal model inputs)."""

    t_ref_ns: int
    plan: Plan
    imu: tuple[np.ndarray, ...]
    frame_times: np.ndarray | None
    frames: tuple[np.ndarray, ...]

    def same(self, other: RawInputs | None) -> bool:
        """Whether ``other`` holds exactly these values (same plan, samples and frames)."""
        if other is None or (self.t_ref_ns, self.plan) != (other.t_ref_ns, other.plan):
            return False
        if (self.frame_times is None) != (other.frame_times is None):
            return False
        if self.frame_times is not None and not np.array_equal(self.frame_times, other.frame_times):
            return False
        if (len(self.imu), len(self.frames)) != (len(other.imu), len(other.frames)):
            return False
        pairs = [
            *zip(self.imu, other.imu, strict=True),
            *zip(self.frames, other.frames, strict=True),
        ]
        return all(np.array_equal(a, b) for a, b in pairs)


def make_rig(
    spec: ModelSpec,
    imu_rates: dict[str, float],
    camera_fps: float | None,
    clock,
    recorder=None,
    stale_after_s: float = 1.0,
) -> tuple[StreamBuffer, Gates]:
    """The rings for the configured streams and the gates in front of them."""
    placements = tuple(p for p in PLACEMENTS if p in imu_rates)
    span = max(spec.window_s, spec.video_span_s)
    fps = camera_fps or 30.0
    cfg = BufferConfig(
        placements=placements,
        imu_channels=3,
        imu_rate_hz={p: float(imu_rates[p]) for p in placements},
        imu_seconds=2 * span + 4.0,
        camera=camera_fps is not None,
        camera_fps=camera_fps,
        frame_capacity=max(16, int(fps * (span + 2.0)) + 8),
        stale_after_s=stale_after_s,
    )
    buffer = StreamBuffer(cfg, clock=clock)
    imu = {p: ImuGate(p, buffer.imu_sink(p), recorder) for p in placements}
    cam = None
    if camera_fps is not None:
        cam = FrameGate("camera", buffer.frame_sink(), recorder, resize_to=spec.img_size)
    return buffer, Gates(imu, cam)


class Recognizer:
    """Per-window work shared by every run mode: assemble, plan, preprocess; then forward,
    postprocess and smoothing. The backend is chosen on the first window that has inputs (a real
    window to verify it on)."""

    def __init__(
        self,
        model,
        spec: ModelSpec,
        config: RuntimeConfig,
        model_id: str = "model",
        backend: Backend | None = None,
    ) -> None:
        self.model = model
        self.spec = spec
        self.config = config
        self.model_id = model_id
        self.backend = backend
        self.smoother = Smoother(config.smooth)
        if config.threads is not None and torch.get_num_threads() != config.threads:
            torch.set_num_threads(config.threads)

    def assemble(
        self, buffer: StreamBuffer, tick: int, index: int, early: Job | None = None
    ) -> Job:
        """Build window ``index`` ending at tick time ``tick`` (buffers already released).

        ``early``: the same window assembled and preprocessed before the cut (during the guard);
        when its raw inputs are exactly the ones found now, its model inputs are used instead of
        preprocessing again (health and everything else is computed afresh)."""
        spec = self.spec
        t0 = time.perf_counter()
        t_ref = buffer.default_t_ref(tick)
        window = buffer.assemble_window(spec.geometry, t_ref if t_ref is not None else tick)
        missing = dict(window.missing)
        frames, ftimes = window.frames, window.frame_times_ns
        present = window.imu_present
        plan = plan_window(present, frames is not None, spec.modes, missing)
        t1 = time.perf_counter()
        inputs = None
        newest = None
        imus: list[str] = []
        raw = None
        reused = False
        if plan.mode is not None:
            raw = RawInputs(
                window.t_ref_ns,
                plan,
                tuple(window.imu[plan.slots[p]] for p in PLACEMENTS if p in plan.slots),
                ftimes if frames is not None else None,
                tuple(frames) if frames is not None else (),
            )
            if early is not None and early.tick_ns == tick and raw.same(early.raw):
                inputs, reused = early.inputs, True
            else:
                inputs = build_inputs(window, frames, plan, spec)
            if "imu" in plan.modalities:
                imus = [p for p in PLACEMENTS if present[p]]
            newest = window.newest_sample_ns
        t2 = time.perf_counter()
        return Job(
            index=index,
            tick_ns=tick,
            t_ref_ns=t_ref,
            plan=plan,
            inputs=inputs,
            newest_ns=newest,
            health=stream_health(
                buffer, {k: v for k, v in missing.items() if v != "not configured"}
            ),
            imus=imus,
            stages_ms={"assemble": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3},
            queued_at=time.perf_counter(),
            raw=raw,
            early=reused,
        )

    def ensure_backend(self, example: ModelInputs) -> Backend:
        """Select and verify the backend on ``example`` if not done yet."""
        if self.backend is None:
            self.backend = select_backend(
                self.config.backend,
                self.config.precision,
                self.model,
                example,
                self.spec.modes,
                model_id=self.model_id,
                cache_dir=self.config.cache_dir,
                timed=self.config.timed_auto,
            )
            log.info("backend: %s %s", self.backend.label, self.backend.note)
        return self.backend

    def infer(self, job: Job, origin_ns: int) -> Prediction:
        """Forward, softmax, smoothing and top-k for one job."""
        pred = Prediction(
            index=job.index,
            tick_ns=job.tick_ns,
            origin_ns=origin_ns,
            t_ref_ns=job.t_ref_ns,
            mode=job.plan.mode,
            modalities=job.plan.modalities,
            imus=job.imus,
            filled=dict(job.plan.filled),
            reason=job.plan.reason,
            newest_ns=job.newest_ns,
            health=job.health,
            stages_ms=dict(job.stages_ms),
        )
        if job.inputs is None or job.plan.mode is None:
            return pred
        backend = self.ensure_backend(job.inputs)
        t0 = time.perf_counter()
        logits = backend.forward(job.inputs, job.plan.mode)
        t1 = time.perf_counter()
        probs = self.smoother.update(job.index, softmax(logits))
        order = np.argsort(-probs, kind="stable")[: self.config.topk]
        classes = self.spec.classes
        pred.probs = probs
        pred.label = classes[int(order[0])]
        pred.score = float(probs[order[0]])
        pred.topk = [(classes[int(i)], float(probs[i])) for i in order]
        pred.stages_ms["forward"] = (t1 - t0) * 1e3
        pred.stages_ms["postprocess"] = (time.perf_counter() - t1) * 1e3
        return pred


class Outputs:
    """Fans predictions out to the sinks and keeps the statistics of the summary."""

    def __init__(
        self,
        sinks: list,
        timings: bool,
        truth: Callable[[Prediction], str | None] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.sinks = sinks
        self.timings = timings
        self.truth = truth
        self.predictions: list[Prediction] = []
        self.latency = Percentiles()
        self.stages = {s: Percentiles() for s in STAGES}
        self.modes: Counter = Counter()
        self.skipped = 0
        self.time_scale = time_scale  # host-clock ns per wall ns (paced replay at N×)

    def emit(self, pred: Prediction, now_ns: int) -> None:
        """Stamp latency at ``now_ns`` (emission time) and hand to every sink."""
        if pred.newest_ns is not None and pred.label is not None:
            pred.latency_ms = (now_ns - pred.newest_ns) / 1e6 / self.time_scale
            work = sum(pred.stages_ms.get(s, 0.0) for s in STAGES[1:])
            if self.timings:
                pred.stages_ms["wait"] = max(0.0, pred.latency_ms - work)
            self.latency.add(pred.latency_ms)
        for s in STAGES:
            if s in pred.stages_ms:
                self.stages[s].add(pred.stages_ms[s])
        self.modes[pred.mode or "none"] += 1
        if self.timings:
            pred.emitted_unix = round(time.time(), 6)
        if self.truth is not None:
            pred.truth = self.truth(pred)
        self.predictions.append(_light(pred))
        for sink in self.sinks:
            sink.emit(pred)

    def summary(self, backend: Backend | None, streams: dict) -> dict:
        n = len(self.predictions)
        predicted = sum(p.label is not None for p in self.predictions)
        return {
            "windows": n,
            "predicted": predicted,
            "no_prediction": n - predicted,
            "skipped": self.skipped,
            "modes": dict(sorted(self.modes.items())),
            "backend": backend.label if backend else "none (no window had data)",
            "backend_note": backend.note if backend else "",
            "latency_ms": self.latency.summary(),
            "stages_ms": {s: p.summary() for s, p in self.stages.items() if p.count},
            "timings": self.timings,
            "streams": streams,
        }


def _light(pred: Prediction) -> Prediction:
    """The prediction without its health detail (kept for evaluation, memory stays small)."""
    return Prediction(
        index=pred.index,
        tick_ns=pred.tick_ns,
        origin_ns=pred.origin_ns,
        t_ref_ns=pred.t_ref_ns,
        label=pred.label,
        score=pred.score,
        probs=pred.probs,
        mode=pred.mode,
        truth=pred.truth,
    )


def stream_summary(buffer: StreamBuffer, drivers: dict | None = None) -> dict:
    """Per-stream totals for the summary (ring counters, plus driver stats when live)."""
    out = {}
    for name, c in buffer.health().items():
        h = {
            "samples": c.samples,
            "rate_hz": round(c.effective_rate_hz, 2),
            "drops": c.drops,
            "out_of_order": c.out_of_order,
            "up": c.up,
            "down_reason": c.down_reason,
        }
        drv = (drivers or {}).get(name)
        if drv is not None:
            st = drv.stats
            h["driver"] = {
                "state": st.state,
                "bad_frames": st.bad_frames,
                "reconnects": st.reconnects,
                "last_error": st.last_error,
            }
        out[name] = h
    return out


# ------------------------------------------------------------------------------- replay, max


def run_replay_max(
    source,
    buffer: StreamBuffer,
    gates: Gates,
    clock,
    recognizer: Recognizer,
    outputs: Outputs,
    origin_ns: int,
    end_s: float,
    progress: bool = True,
    overlap: bool = True,
) -> None:
    """``--speed max``: advance the replay tick by tick on the virtual ``clock``; nothing
    skipped, deterministic.

    With ``overlap`` two stages share the two cores: a reader thread advances the replay,
    releases the gates, assembles and preprocesses window k+1 while this thread runs the forward
    of window k and emits it. Each window's inputs are complete before it is handed over (a
    bounded queue) and predictions are emitted in window order, so the output is the same as
    one window after the other (``overlap=False``) — only sooner.
    """
    from tqdm import tqdm

    stride = recognizer.config.stride_s
    last = max(1, int(np.floor(end_s / stride + 1e-9)))

    def windows():
        for k in range(1, last + 1):
            tick = tick_ns(origin_ns, stride, k)
            source.advance_to((tick - origin_ns) / _NS)
            clock.set_ns(tick)
            gates.release(tick)
            yield recognizer.assemble(buffer, tick, k)

    reader = _read_ahead(windows()) if overlap else contextlib.nullcontext(windows())
    with (
        tqdm(total=last, unit="win", desc="replay", disable=not progress, leave=False) as bar,
        reader as jobs,
    ):
        for job in jobs:
            outputs.emit(recognizer.infer(job, origin_ns), job.tick_ns)
            bar.update(1)


def replay_session_max(
    session,
    recognizer: Recognizer,
    outputs: Outputs,
    end_s: float,
    *,
    skip_imus: tuple[str, ...] = (),
    camera: bool = True,
    stale_after_s: float = 1.0,
    progress: bool = True,
    overlap: bool = True,
    wrap_source=None,
) -> StreamBuffer:
    """:func:`run_replay_max` over an open ``session`` up to ``end_s``: a virtual clock from the
    session's first stamp, the rig of its streams (less the IMUs ``skip_imus``, and the camera
    unless ``camera``), its replay source (``wrap_source`` may wrap it). Returns the buffer, for
    the stream summary."""
    from drivers.replay import ReplaySource

    origin = int(session.t0_ns or 0)
    clock = VirtualClock(origin)
    rates = {p: s.rate_hz for p, s in session.imu.items() if p not in skip_imus}
    fps = session.video.fps if camera and session.has_video else None
    buffer, gates = make_rig(recognizer.spec, rates, fps, clock, stale_after_s=stale_after_s)
    source = ReplaySource(session, gates.imu, gates.camera, t0_ns=origin)
    if wrap_source is not None:
        source = wrap_source(source)
    run_replay_max(
        source, buffer, gates, clock, recognizer, outputs, origin, end_s, progress, overlap
    )
    return buffer


@contextlib.contextmanager
def _read_ahead(items, depth: int = REPLAY_QUEUE):
    """Iterate ``items`` in a daemon thread, up to ``depth`` ahead of the consumer; yields an
    iterator over them in order. An exception in the thread is re-raised to the consumer; the
    thread is stopped and joined when the block exits. The thread switch interval is lowered
    meanwhile (see :meth:`LiveRun.run`): both threads alternate short torch calls."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()
    failed: list[BaseException] = []

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # re-raised in the consumer's thread
            failed.append(exc)
        put(done)

    def consume():
        while (item := q.get()) is not done:
            yield item
        if failed:
            raise failed[0]

    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
    thread = threading.Thread(target=produce, name="replay-reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue, then join it
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        sys.setswitchinterval(previous)


# ------------------------------------------------------------------------------- live


class LiveRun:
    """Scheduler and inference threads around running drivers (see the module doc).

    ``start_ns``: host time the data starts at (a paced replay after a seek); the first window
    is the first tick at or after it, so no window ends before the data it could hold.
    """

    def __init__(
        self,
        buffer: StreamBuffer,
        gates: Gates,
        tick_clock: VirtualClock,
        recognizer: Recognizer,
        outputs: Outputs,
        origin_ns: int,
        host_clock: Clock = time.monotonic_ns,
        status=None,
        speed: float = 1.0,
        start_ns: int | None = None,
    ) -> None:
        self.buffer = buffer
        self.gates = gates
        self.tick_clock = tick_clock
        self.recognizer = recognizer
        self.outputs = outputs
        self.origin_ns = origin_ns
        self.host_clock = host_clock
        self.status = status
        self.speed = float(speed)  # host_clock ns per wall ns (a ScaledClock in paced replays)
        self.start_ns = origin_ns if start_ns is None else int(start_ns)
        self.slot: LatestSlot[Job] = LatestSlot()
        self._stop = threading.Event()
        self.late_ticks = 0
        #: windows whose early preprocessing was used at the cut / had to be redone
        self.early_hits = 0
        self.early_misses = 0
        self.errors: list[BaseException] = []

    def _schedule(self) -> None:
        """Cut every window ``guard`` after its tick; halfway through the guard, release what
        has arrived and preprocess the window early. At the cut, the late arrivals (stamped
        before the tick) are released too, the window is assembled again, and the early inputs
        are used when nothing in the window changed (:attr:`early_hits`), so the preprocessing
        runs while the guard waits instead of after it. The rings end up holding exactly what
        one release at the cut would give them, so the windows are the same either way."""
        cfg = self.recognizer.config
        guard = round(cfg.guard_s * self.speed * _NS)
        stride = round(cfg.stride_s * _NS)
        k = max(1, -(-(self.start_ns - self.origin_ns) // stride))  # first tick >= start
        early: Job | None = None
        try:
            while not self._stop.is_set():
                tick = tick_ns(self.origin_ns, cfg.stride_s, k)
                now = self.host_clock()
                if early is None and guard > 0 and tick + guard // 2 <= now < tick + guard:
                    self.tick_clock.set_ns(tick)
                    self.gates.release(tick)
                    early = self.recognizer.assemble(self.buffer, tick, k)
                    continue
                if now < tick + guard:
                    due = tick + (guard if early is not None else guard // 2)
                    self._stop.wait(min(0.05, max(0, due - now) / _NS / self.speed))
                    continue
                newest = due_tick(self.origin_ns, cfg.stride_s, now - guard)
                if newest > k:  # woke up late: latest wins
                    self.late_ticks += newest - k
                    k = newest
                    tick = tick_ns(self.origin_ns, cfg.stride_s, k)
                self.tick_clock.set_ns(tick)
                self.gates.release(tick)
                job = self.recognizer.assemble(self.buffer, tick, k, early=early)
                if early is not None and early.raw is not None:
                    self.early_hits += job.early
                    self.early_misses += not job.early
                early = None
                self.slot.put(job)
                k += 1
        except BaseException as exc:  # reported by run(); never silently
            log.exception("scheduler failed")
            self.errors.append(exc)
        finally:
            self.slot.close()

    def _infer(self) -> None:
        """Forward every window handed over and emit its prediction from this thread: a hand-over
        to another thread for the sinks would add its wake-up to every window's latency."""
        try:
            while True:
                job = self.slot.get(0.1)
                if job is None:
                    if self.slot.closed:
                        return
                    continue
                pred = self.recognizer.infer(job, self.origin_ns)
                if not self._emit(pred):
                    return
        except EvimaeError as exc:
            # expected (a precision this machine cannot run, a model that does not fit): one
            # line, no traceback; run() re-raises it for the caller to report
            log.error("inference stopped: %s", exc)
            self.errors.append(exc)
        except BaseException as exc:
            log.exception("inference failed")
            self.errors.append(exc)
        finally:
            self._stop.set()

    def _emit(self, pred: Prediction) -> bool:
        """Stamp and hand ``pred`` to the outputs; False (the run stops, run() re-raises) when a
        sink fails, e.g. a closed pipe."""
        self.outputs.skipped = self.slot.replaced + self.late_ticks
        if self.status is not None:
            self.status.skipped = self.outputs.skipped
        try:
            self.outputs.emit(pred, self.host_clock())
        except BaseException as exc:  # the caller reports it, as it would its own
            self.errors.append(exc)
            return False
        return True

    def run(self, stop_when: Callable[[], bool]) -> None:
        """Run until ``stop_when()`` is true (checked ~10× a second) or Ctrl-C, then drain.

        For the run, the interpreter's thread switch interval is lowered to
        :data:`SWITCH_INTERVAL_S` (restored after): a forward is hundreds of small torch calls,
        each needing the GIL back, and with the default 5 ms every busy driver thread could
        hold the inference thread up 5 ms per call (measured: a tiny-model forward at 1.2 s
        instead of 30 ms next to four synthetic IMU threads; 0.2 s with 0.5 ms)."""
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
        try:
            self._run(stop_when)
        finally:
            sys.setswitchinterval(previous)

    def _run(self, stop_when: Callable[[], bool]) -> None:
        sched = threading.Thread(target=self._schedule, name="scheduler", daemon=True)
        infer = threading.Thread(target=self._infer, name="inference", daemon=True)
        sched.start()
        infer.start()
        try:
            while infer.is_alive():
                infer.join(0.1)
                if not self._stop.is_set() and stop_when():
                    self._stop.set()
        except KeyboardInterrupt:
            log.info("interrupted")
            self._stop.set()
            raise
        finally:
            self._stop.set()
            sched.join(5)
            infer.join(30)
            self.outputs.skipped = self.slot.replaced + self.late_ticks
        if self.errors:
            raise self.errors[0]
