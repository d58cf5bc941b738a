"""The runtime's rig: the rings of a run's streams, the tick gates in front of them, the clock the
rings read, and the run's time origin.

Samples enter the rings only through the gates, at each window tick (frames are shrunk to the
model's input size on the way), and a recorder behind the gates sees exactly what the sensors
sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from evimae_stream.buffer import StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.runtime.gate import FrameGate, Gates, ImuGate
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.streams import StreamSpec


@dataclass
class Rig:
    """The rings (``buffer``), the gates in front of them and the clock the buffer reads
    (``clock``: moved to each tick live, to the replay's time at max speed), with the host time
    ``origin_ns`` of 0 s on the run's timeline and the host time ``start_ns`` its data starts
    at (after a seek: the seek's target), before which it has no windows."""

    buffer: StreamBuffer
    gates: Gates
    clock: VirtualClock
    origin_ns: int
    start_ns: int


def build_rig(
    spec: ModelSpec,
    streams: StreamSpec,
    clock: VirtualClock,
    origin_ns: int = 0,
    start_ns: int | None = None,
    recorder=None,
    stale_after_s: float = 1.0,
) -> Rig:
    """The rings for ``streams``, sized for the model's windows, and the gates in front of
    them (feeding ``recorder`` too, when given)."""
    config = streams.buffer_config(spec.geometry.span_s, stale_after_s=stale_after_s)
    buffer = StreamBuffer(config, clock=clock)
    imu = {p: ImuGate(p, buffer.imu_sink(p), recorder) for p in streams.placements}
    cam = None
    if streams.camera:
        cam = FrameGate("camera", buffer.frame_sink(), recorder, resize_to=spec.img_size)
    origin = int(origin_ns)
    return Rig(buffer, Gates(imu, cam), clock, origin, origin if start_ns is None else start_ns)
