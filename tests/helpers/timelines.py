"""Synthetic sensor timelines for the clock and buffer tests.

A device samples at ``rate_hz`` by its own oscillator, which runs ``drift_ppm`` slow or fast
against the host; the host receives each sample after a non-negative delay (exponential jitter,
now and then a heavy-tailed extra delay), some samples are lost, some pairs arrive swapped, and
the device clock may jump. Everything the code under test must recover (true host time of each
sample, the true drift) is known here by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000


@dataclass
class Timeline:
    """Samples in ARRIVAL order.

    ``arrival_ns``: host arrival stamps (int64); ``t_dev``: device timestamps (s);
    ``true_ns``: host time at which each sample was really taken; ``index``: sample number;
    ``swapped``: True for a sample that arrived after its successor (it must be dropped);
    ``epoch``: which device-clock segment (0, then +1 after each jump).
    """

    rate_hz: float
    drift_ppm: float
    arrival_ns: np.ndarray
    t_dev: np.ndarray
    true_ns: np.ndarray
    index: np.ndarray
    swapped: np.ndarray
    epoch: np.ndarray


def make_timeline(
    rng: np.random.Generator,
    rate_hz: float,
    drift_ppm: float,
    duration_s: float,
    jitter_ms: float = 2.0,
    tail_p: float = 0.01,
    tail_ms: float = 30.0,
    drop_p: float = 0.0,
    swap_p: float = 0.0,
    jumps_s: tuple[float, ...] = (),
    host_start_ns: int = 5 * NS,
    dev_start_s: float = 1000.0,
) -> Timeline:
    """Build a timeline (see module doc); ``jumps_s`` are device-clock jumps (s), spread evenly
    over the duration."""
    n = int(duration_s * rate_hz)
    i = np.arange(n)
    true_ns = host_start_ns + np.round(i / rate_hz * (1 + drift_ppm * 1e-6) * NS).astype(np.int64)
    t_dev = dev_start_s + i / rate_hz
    epoch = np.zeros(n, np.int64)
    for j, jump in enumerate(jumps_s):
        at = int(n * (j + 1) / (len(jumps_s) + 1))
        t_dev[at:] += jump
        epoch[at:] += 1
    delay = rng.exponential(jitter_ms * 1e6, n)
    tail = rng.random(n) < tail_p
    delay[tail] += rng.exponential(tail_ms * 1e6, int(tail.sum()))
    arrival = true_ns + np.round(delay).astype(np.int64) + 1
    keep = rng.random(n) >= drop_p
    keep[0] = True
    swapped = np.zeros(n, bool)
    kept = np.nonzero(keep)[0]
    # swap a kept sample with the next kept one: it arrives just after its successor
    k = 1
    while k < len(kept) - 2:
        if rng.random() < swap_p:
            a, b = kept[k], kept[k + 1]
            if epoch[a] == epoch[b] and epoch[b] == epoch[kept[k + 2]]:
                arrival[a] = arrival[b] + 100_000
                swapped[a] = True
                k += 3
                continue
        k += 1
    # a jump is seen when the first sample of the new segment arrives: after all earlier ones
    for at in np.nonzero(np.diff(epoch))[0] + 1:
        floor = arrival[:at].max() + 1 + np.arange(n - at) * 1000
        arrival[at:] = np.maximum(arrival[at:], floor)
    order = kept[np.argsort(arrival[kept], kind="stable")]
    return Timeline(
        rate_hz=rate_hz,
        drift_ppm=drift_ppm,
        arrival_ns=arrival[order],
        t_dev=t_dev[order],
        true_ns=true_ns[order],
        index=i[order],
        swapped=swapped[order],
        epoch=epoch[order],
    )


def expected_out_of_order(tl: Timeline) -> np.ndarray:
    """Samples a stream must drop: an earlier-arrived sample of the same device-clock segment has
    a newer device time (the rule of ``DeviceTimeMap``, computed independently)."""
    newest: dict[int, float] = {}
    late = np.zeros(len(tl.t_dev), bool)
    for k, (d, e) in enumerate(zip(tl.t_dev.tolist(), tl.epoch.tolist(), strict=True)):
        if d <= newest.get(e, -np.inf):
            late[k] = True
        else:
            newest[e] = d
    return late
