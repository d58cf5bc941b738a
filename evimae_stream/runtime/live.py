"""A live run: drivers stream in their own threads into the gates; a scheduler thread releases
them at every tick, assembles and preprocesses the window and hands it to the inference thread
through a latest-wins slot (skipped windows counted); the inference thread emits each prediction
to the outputs as soon as it has it, and the caller's thread only watches for the end. Used for
sensors and for paced replays (``--speed 1``/``N``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from evimae_stream.buffer import StreamBuffer
from evimae_stream.clock import Clock, VirtualClock
from evimae_stream.errors import EvimaeError
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.gate import Gates
from evimae_stream.runtime.outputs import Outputs
from evimae_stream.runtime.recognizer import Job, Recognizer
from evimae_stream.runtime.scheduler import LatestSlot
from evimae_stream.window import due_tick, tick_ns

log = logging.getLogger(__name__)

_NS = 1_000_000_000
#: the interpreter's thread switch interval during a live run (see :meth:`LiveRun.run`)
SWITCH_INTERVAL_S = 0.0005


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
