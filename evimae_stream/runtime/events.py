"""One prediction event per window, and its JSON Lines form.

JSONL schema (one object per line; ``type`` tells the kind)::

    {"type": "start",
     "model": str,             # --model as given (the bundled demo model's directory by default)
     "variant": str,           # the model's architecture, e.g. "evimae_tiny"
     "classes": [str],         # class names, in the model's output order
     "modes": [str],           # forward modes the model supports
     "stride_s": float,        # seconds between windows
     "window_s": float,        # seconds of IMU data per window
     "source": str,            # the replayed session, or the live sensors as given
     "threads": int,           # torch's intra-op threads (--threads, else chosen per model)
     "vocabulary": {...}}      # only with --vocabulary: its source, names, prompts, templates
                               # ("classes" are then its names)
    {"type": "prediction",
     "window": int,            # tick index k (1, 2, …): the window ends at tick k
     "t_s": float,             # tick time, seconds from the run's origin (replay: session time)
     "t_ref_s": float|null,    # end of the window's data (oldest "newest sample"), same clock
     "label": str|null,        # predicted class (after --smooth), null: no prediction
     "score": float|null,      # its probability (softmax of the logits, smoothed)
     "topk": [{"label": str, "score": float}],       # best 3, highest first
     "mode": "multimodal"|"imu_only"|"video_only"|null,
     "modalities": ["imu", "video"],                   # what the prediction used
     "imus": [placement],      # IMUs that contributed their own data
     "filled": {slot: placement},                      # missing slots filled from another IMU
     "reason": str|null,       # why there is no prediction
     "latency_ms": float|null, # emission − host time of the newest sample used
     "health": {stream: {"up": bool, "rate_hz": float, "drops": int, "missing": str|null}},
                               # up: usable (linked, fresh, on time); rate: per stream second
     "truth": str|null,        # only with --eval: the label at the window's centre
     "stages_ms": {"wait", "assemble", "preprocess", "forward", "postprocess": float},
     "time": float}            # UNIX time of emission
    {"type": "label",           # --label-keys or the monitor's label bar, as the user presses
     "event": "start"|"end",   # an action starts, or the open one ends
     "label": str,             # the action
     "t_s": float}             # host time of the key press, seconds from the run's origin
    {"type": "segment",        # only with --segments (evimae_stream.runtime.segmenter)
     "id": int,                # one segment: its events share the id
     "label": str,             # the interval head's class
     "score": float,           # its score
     "start_s": float,         # segment start, session/run seconds (same clock as t_s)
     "end_s": float,           # segment end, same clock
     "open": bool,             # true while it goes on (one event per stride), then false once
     "t_s": float,             # tick time of the window that produced the event
     "latency_ms": float|null, # the window's latency_ms + the interval head's forward
     "interval_ms": float}     # the interval head's forward (live and paced runs only)
    {"type": "gap",            # --speed max jumped over a stretch with no data from any stream
     "from_window": int,       # the first window not cut (tick index)
     "resume_window": int,     # the window the replay resumed at, on the same tick grid
     "windows": int,           # windows not cut (each would have had no data)
     "no_data_from_s": float,  # session time of the last sample before the stretch
     "no_data_to_s": float,    # session time of the first sample after it
     "skipped_s": float}       # its length: no_data_to_s - no_data_from_s
    {"type": "end",
     "windows": int,           # prediction events written
     "predicted": int,         # of which with a label
     "skipped": int,           # windows never inferred: inference lagged, the newest won
     "backend": str,           # name/precision/device the forward ran on
     "backend_check": {"top1_agree": bool, "max_abs_dlogit": float, "max_abs_dprob": float}|null}
                               # its check against eager fp32 on the first window (null: eager
                               # fp32 itself, or no window had data)

``stages_ms`` and ``time`` are wall-clock measurements: they are written only for live and paced
runs. With ``--replay X --speed max`` everything runs on a virtual clock (``latency_ms`` there is
virtual too) and the file is identical on every run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

_NS = 1_000_000_000


@dataclass
class Prediction:
    """What the pipeline decided for one window (see the module doc for the fields)."""

    index: int
    tick_ns: int
    origin_ns: int
    t_ref_ns: int | None
    label: str | None = None
    score: float | None = None
    probs: np.ndarray | None = None
    topk: list[tuple[str, float]] = field(default_factory=list)
    mode: str | None = None
    modalities: tuple[str, ...] = ()
    imus: list[str] = field(default_factory=list)
    filled: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    newest_ns: int | None = None
    latency_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    health: dict[str, dict] = field(default_factory=dict)
    truth: str | None = None
    emitted_unix: float | None = None
    #: a language-aligned window's embeddings (``{"imu"|"video": (dim,)}``; not in the JSONL)
    embeddings: dict[str, np.ndarray] | None = None

    @property
    def t_s(self) -> float:
        """Tick time in seconds from the origin."""
        return (self.tick_ns - self.origin_ns) / _NS

    @property
    def t_ref_s(self) -> float | None:
        return None if self.t_ref_ns is None else (self.t_ref_ns - self.origin_ns) / _NS

    def to_dict(self, timings: bool, truth: bool = False) -> dict:
        """The JSON object of this event (``timings``: include wall-clock fields)."""
        d: dict = {
            "type": "prediction",
            "window": self.index,
            "t_s": round(self.t_s, 6),
            "t_ref_s": None if self.t_ref_s is None else round(self.t_ref_s, 6),
            "label": self.label,
            "score": None if self.score is None else round(float(self.score), 5),
            "topk": [{"label": lab, "score": round(float(s), 5)} for lab, s in self.topk],
            "mode": self.mode,
            "modalities": list(self.modalities),
            "imus": list(self.imus),
            "filled": dict(self.filled),
            "reason": self.reason,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "health": self.health,
        }
        if truth:
            d["truth"] = self.truth
        if timings:
            d["stages_ms"] = {k: round(v, 3) for k, v in self.stages_ms.items()}
            d["time"] = self.emitted_unix
        return d


@dataclass(frozen=True)
class Gap:
    """A stretch of a max-speed replay in which no stream had data, jumped over: windows
    ``first_index`` … ``resume_index − 1`` (every ``stride_s``) were not cut; the data stopped at
    ``from_s`` and starts again at ``to_s`` (session seconds)."""

    first_index: int
    resume_index: int
    stride_s: float
    from_s: float
    to_s: float

    @property
    def windows(self) -> int:
        return self.resume_index - self.first_index

    @property
    def skipped_s(self) -> float:
        return self.to_s - self.from_s

    def text(self) -> str:
        """One line for people."""
        return (
            f"skipped a gap of {self.skipped_s:.1f} s with no data from any stream "
            f"(session {self.from_s:.1f} s to {self.to_s:.1f} s; {self.windows} empty windows "
            f"not cut); resuming at {self.resume_index * self.stride_s:.1f} s"
        )

    def to_dict(self) -> dict:
        """The JSON object of this event (schema above)."""
        return {
            "type": "gap",
            "from_window": self.first_index,
            "resume_window": self.resume_index,
            "windows": self.windows,
            "no_data_from_s": round(self.from_s, 6),
            "no_data_to_s": round(self.to_s, 6),
            "skipped_s": round(self.skipped_s, 6),
        }


def dumps(obj: dict) -> str:
    """One JSON line (no NaN: it is not JSON)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def start_event(
    model: str, variant: str, classes, modes, stride_s: float, window_s: float, source: str,
    vocabulary: dict | None = None, threads: int | None = None,
) -> dict:  # fmt: skip
    """The first JSONL event (schema above): the model's path as given and its variant, what
    it recognises, the source as given, torch's thread count, and with ``--vocabulary`` what
    the vocabulary was. (The backend is chosen and checked on the first window, so the end
    event says which it was.)"""
    extra = {"vocabulary": vocabulary} if vocabulary is not None else {}
    return {
        "type": "start",
        "model": model,
        "variant": variant,
        "classes": list(classes),
        "modes": list(modes),
        "stride_s": stride_s,
        "window_s": window_s,
        "source": source,
        "threads": threads,
        **extra,
    }


def label_event(kind: str, label: str, t_s: float) -> dict:
    """A ``label`` event (schema above): ``kind`` ``start`` or ``end`` of ``label`` at ``t_s``."""
    return {"type": "label", "event": kind, "label": label, "t_s": round(float(t_s), 6)}


def end_event(summary: dict) -> dict:
    """The last JSONL event (schema above), from a run's summary."""
    return {
        "type": "end",
        "windows": summary["windows"],
        "predicted": summary["predicted"],
        "skipped": summary["skipped"],
        "backend": summary["backend"],
        "backend_check": summary.get("backend_check"),
    }
