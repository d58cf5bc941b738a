"""``--speed max``: a replay on a virtual clock, tick by tick; nothing skipped, deterministic.

For every tick the replay is advanced to the tick and the window assembled (in a reader thread,
ahead of the forward), then inferred and emitted in window order.

A stretch of at least :data:`MIN_GAP_S` in which no stream has data (a recording paused for an
hour) is jumped over: its windows would all be empty ("no data"), one line each. The replay
emits one :class:`~evimae_stream.runtime.events.Gap` instead and resumes at the first tick of
the same grid whose window holds the next sample.
"""

from __future__ import annotations

import contextlib
import math
import queue
import sys
import threading

import numpy as np

from evimae_stream.buffer import StreamBuffer
from evimae_stream.runtime.events import Gap
from evimae_stream.runtime.gate import Gates
from evimae_stream.runtime.live import SWITCH_INTERVAL_S
from evimae_stream.runtime.outputs import Outputs
from evimae_stream.runtime.recognizer import Recognizer
from evimae_stream.window import tick_ns

_NS = 1_000_000_000
#: windows the ``--speed max`` reader may assemble ahead of the forward
REPLAY_QUEUE = 4
#: the shortest stretch of empty windows (seconds of ticks) a max-speed replay jumps over;
#: shorter dropouts keep their windows, each saying why it has no prediction
MIN_GAP_S = 10.0


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
    span_s = recognizer.spec.geometry.span_s

    def windows():
        k = 1
        while k <= last:
            gap = gap_ahead(source, k, stride, span_s)
            if gap is not None:
                yield gap
                k = gap.resume_index
                continue
            tick = tick_ns(origin_ns, stride, k)
            source.advance_to((tick - origin_ns) / _NS)
            clock.set_ns(tick)
            gates.release(tick)
            yield recognizer.assemble(buffer, tick, k)
            k += 1

    reader = read_ahead(windows()) if overlap else contextlib.nullcontext(windows())
    with (
        tqdm(total=last, unit="win", desc="replay", disable=not progress, leave=False) as bar,
        reader as jobs,
    ):
        for job in jobs:
            if isinstance(job, Gap):
                outputs.gap(job)
                bar.update(min(job.resume_index, last + 1) - job.first_index)
                continue
            outputs.emit(recognizer.infer(job, origin_ns), job.tick_ns)
            bar.update(1)


def gap_ahead(source, k: int, stride_s: float, span_s: float) -> Gap | None:
    """The :class:`Gap` that starts at tick ``k`` (seconds ``k·stride`` of session time), or
    None. Tick ``j`` is empty when its window ``(t − span, t]`` holds nothing: it ends before
    the source's next sample and starts after the last one pushed. A run of empty ticks
    covering at least :data:`MIN_GAP_S` is a gap; the replay resumes at the first tick at or
    after the next sample, on the same grid. Sources that cannot say where their next sample is
    (no ``next_s``) are played window by window."""
    next_s = getattr(source, "next_s", None)
    if next_s is None:
        return None
    t_next, t_last = next_s(), source.last_s
    if not math.isfinite(t_next) or k * stride_s < t_last + span_s or k * stride_s >= t_next:
        return None
    resume = max(k + 1, math.ceil(t_next / stride_s - 1e-9))
    if (resume - k) * stride_s < MIN_GAP_S:
        return None
    return Gap(k, resume, stride_s, max(t_last, 0.0), t_next)


@contextlib.contextmanager
def read_ahead(items, depth: int = REPLAY_QUEUE):
    """Iterate ``items`` in a daemon thread, up to ``depth`` ahead of the consumer; yields an
    iterator over them in order. An exception in the thread is re-raised to the consumer; the
    thread is stopped and joined when the block exits. The thread switch interval is lowered
    meanwhile (see :meth:`~evimae_stream.runtime.live.LiveRun.run`): both threads alternate
    short torch calls."""
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
