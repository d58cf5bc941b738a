"""``--lsl``: a run's predictions (and with ``--lsl-sensors`` its aligned sensors) published
as Lab Streaming Layer outlets while it recognises.

Streams (names fixed, so a LabRecorder or an analysis script finds them):

- ``evimae_predictions`` (``Markers``, one string channel, irregular): the label of every
  window with a prediction;
- ``evimae_probabilities`` (``Probabilities``, float32, one channel per class labelled with the
  class name, at 1/stride Hz): the class probabilities of the same windows;
- ``evimae_labels`` (``Markers``): label events, pushed through :meth:`PredictionOutlets.
  label_event` (for the labelling feature, which does not exist yet: nothing pushes them today);
- with ``--lsl-sensors``: ``evimae_<placement>`` (``IMU``, ``ax, ay, az`` in g at the nominal
  rate) carrying each IMU's samples as they entered the rings, at their aligned (device→host
  mapped) times, and ``evimae_camera_frames`` (``VideoFrames``, the frame index) with each
  frame's timestamp — no pixels. They are published at every window, so they lag by ≤ a stride.

Each stream's ``<desc>`` follows LSL's conventions (``<channels><channel><label><unit><type>``,
``<acquisition>``) and adds the model (path, variant, classes, window, stride) and placements.
Stamps are on LSL's clock: a prediction at the time its newest sample was taken (emission −
latency), sensor samples at their host times moved onto LSL's clock by the offset between the
run's host clock and ``local_clock()`` measured when the outlets open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

import evimae_stream
from evimae_stream.extras import require_lsl
from evimae_stream.runtime.events import Prediction
from evimae_stream.sessions.xdf import imu_channels

log = logging.getLogger(__name__)

PREDICTIONS, PROBABILITIES, LABELS = "evimae_predictions", "evimae_probabilities", "evimae_labels"
CAMERA_FRAMES = "evimae_camera_frames"


def sensor_stream(placement: str) -> str:
    """The outlet name of one IMU with ``--lsl-sensors``."""
    return f"evimae_{placement}"


def _outlet(pylsl, name, kind, channels, rate, fmt, meta: dict):
    """An outlet whose ``<desc>`` has ``channels`` ((label, unit, type) each), the software
    under ``<acquisition>``, and ``meta`` (text values, or lists of ``(child, texts)``)."""
    info = pylsl.StreamInfo(name, kind, len(channels), rate, fmt, f"evimae-stream:{name}")
    desc = info.desc()
    chans = desc.append_child("channels")
    for label, unit, ctype in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit:
            ch.append_child_value("unit", unit)
        ch.append_child_value("type", ctype)
    desc.append_child("acquisition").append_child_value(
        "software", f"evimae-stream {evimae_stream.__version__}"
    )
    for key, value in meta.items():
        if isinstance(value, tuple):
            child, texts = value
            node = desc.append_child(key)
            for text in texts:
                node.append_child_value(child, str(text))
        else:
            desc.append_child_value(key, str(value))
    return pylsl.StreamOutlet(info)


class PredictionOutlets:
    """The prediction, probability and label-event outlets (a sink: ``emit(prediction)``)."""

    def __init__(self, model: dict, classes: Sequence[str], stride_s: float) -> None:
        pylsl = self._lsl = require_lsl("--lsl")
        meta = {**model, "classes": ("class", classes), "stride_s": stride_s}
        marker = [("label", "", "Marker")]
        self.markers = _outlet(pylsl, PREDICTIONS, "Markers", marker, 0.0, pylsl.cf_string, meta)
        probs = [(c, "probability", "Probability") for c in classes]
        self.probs = _outlet(
            pylsl, PROBABILITIES, "Probabilities", probs, 1.0 / stride_s, pylsl.cf_float32, meta
        )
        self.labels = _outlet(pylsl, LABELS, "Markers", marker, 0.0, pylsl.cf_string, meta)

    def emit(self, pred: Prediction) -> None:
        if pred.label is None or pred.probs is None:
            return
        stamp = self._lsl.local_clock() - (pred.latency_ms or 0.0) / 1000.0
        self.markers.push_sample([pred.label], stamp)
        self.probs.push_sample(np.asarray(pred.probs, dtype=np.float32).tolist(), stamp)

    def label_event(self, label: str, stamp: float | None = None) -> None:
        """Publish one label event (``stamp``: LSL seconds; default now)."""
        self.labels.push_sample([label], self._lsl.local_clock() if stamp is None else stamp)

    def close(self) -> None:
        self.markers = self.probs = self.labels = None


class SensorOutlets:
    """``--lsl-sensors``: the rings' new samples and frames at every window (a sink)."""

    def __init__(self, buffer, host_clock) -> None:
        pylsl = self._lsl = require_lsl("--lsl-sensors")
        self.buffer = buffer
        # host timeline -> LSL seconds
        self._offset = pylsl.local_clock() - host_clock() / 1e9
        self.imu = {}
        for p in buffer.imu:
            rate = buffer.imu[p].nominal_rate_hz or 0.0
            chans = imu_channels(("ax", "ay", "az"))
            self.imu[p] = _outlet(
                pylsl, sensor_stream(p), "IMU", chans, rate, pylsl.cf_float32, {"placement": p}
            )
        self.camera = None
        cam = buffer.camera
        if cam is not None:
            chans = [("frame_index", "", "FrameIndex")]
            self.camera = _outlet(
                pylsl, CAMERA_FRAMES, "VideoFrames", chans, cam.nominal_rate_hz or 0.0,
                pylsl.cf_int64, {"placement": "head"},
            )  # fmt: skip
        self._last: dict[str, int] = {}
        self._frames = 0

    def emit(self, pred: Prediction) -> None:
        for p, outlet in self.imu.items():
            snap = self.buffer.imu[p].snapshot(self._last.get(p, -1) + 1, None)
            if len(snap.t_ns):
                self._last[p] = int(snap.t_ns[-1])
                stamps = (snap.t_ns / 1e9 + self._offset).tolist()
                outlet.push_chunk(snap.values[:, :3].tolist(), stamps)
        if self.camera is not None:
            t, _ = self.buffer.camera.snapshot(self._last.get("camera", -1) + 1, None)
            if len(t):
                self._last["camera"] = int(t[-1])
                index = [[self._frames + i] for i in range(len(t))]
                self._frames += len(t)
                self.camera.push_chunk(index, (t / 1e9 + self._offset).tolist())

    def close(self) -> None:
        self.imu, self.camera = {}, None
