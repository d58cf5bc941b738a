"""``--speed max``: a replay on a virtual clock, tick by tick; nothing skipped, deterministic.

For every tick the replay is advanced to the tick and the window assembled (in a reader thread,
ahead of the forward), then inferred and emitted in window order.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading

import numpy as np

from evimae_stream.buffer import StreamBuffer
from evimae_stream.runtime.gate import Gates
from evimae_stream.runtime.live import SWITCH_INTERVAL_S
from evimae_stream.runtime.outputs import Outputs
from evimae_stream.runtime.recognizer import Recognizer
from evimae_stream.runtime.scheduler import tick_ns

_NS = 1_000_000_000
#: windows the ``--speed max`` reader may assemble ahead of the forward
REPLAY_QUEUE = 4


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

    reader = read_ahead(windows()) if overlap else contextlib.nullcontext(windows())
    with (
        tqdm(total=last, unit="win", desc="replay", disable=not progress, leave=False) as bar,
        reader as jobs,
    ):
        for job in jobs:
            outputs.emit(recognizer.infer(job, origin_ns), job.tick_ns)
            bar.update(1)


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
