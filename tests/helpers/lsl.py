"""Real LSL outlets for the tests (loopback only: conftest sets LSLAPICFG), closed by the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np


def imu_outlet(name: str, labels: Sequence[str], units: Sequence[str], rate: float = 50.0):
    """A float32 outlet named ``name`` whose channels carry ``labels`` and ``units``."""
    import pylsl

    info = pylsl.StreamInfo(name, "IMU", len(labels), rate, pylsl.cf_float32, f"test-{name}")
    chans = info.desc().append_child("channels")
    for label, unit in zip(labels, units, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


class Publisher:
    """Pushes ``values[p]`` (N, C) of each outlet at ``rate`` Hz in real time, one sample at a
    time as IMU apps do, from a thread, once every outlet has a consumer (at most 60 s), until
    the rows run out or :meth:`stop` (bounded by the data)."""

    def __init__(self, outlets: dict, values: dict[str, np.ndarray], rate: float = 50.0) -> None:
        self.outlets, self.values, self.rate = outlets, values, rate
        self._stop = threading.Event()
        self.pushed = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        # start when every outlet has a consumer (a run that starts slowly misses nothing)
        deadline = time.monotonic() + 60.0
        while not all(o.have_consumers() for o in self.outlets.values()):
            if time.monotonic() > deadline or self._stop.wait(0.05):
                return
        n = min(len(v) for v in self.values.values())
        start = time.monotonic()
        for i in range(n):
            if self._stop.wait(max(0.0, start + i / self.rate - time.monotonic())):
                return
            for p, outlet in self.outlets.items():
                outlet.push_sample(self.values[p][i].tolist())
            self.pushed = i + 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
