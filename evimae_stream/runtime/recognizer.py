"""The per-window work shared by every run mode (:class:`Recognizer`): assemble the window from
the rings, plan its mode, preprocess; then forward, postprocess and smoothing.

``on_stage``: the stage-timing hook, ``fn(event, window index)`` called as the work passes
``assemble`` (start of an assembly: early, during the guard, and at the cut), ``assembled``
(handed over to inference), ``forward`` (its start) and ``postprocessed`` (the prediction is
made); a benchmark reads its own clocks there. None (the default) costs one test per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from evimae_stream.buffer import StreamBuffer
from evimae_stream.device import choose_threads
from evimae_stream.errors import ArtifactError
from evimae_stream.health import event_health
from evimae_stream.runtime.backends import Backend, ModelInputs, select_backend
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.inputs import ModelSpec, build_inputs, softmax, usable_imus
from evimae_stream.runtime.policy import Plan, plan_window
from evimae_stream.runtime.smoothing import Smoother
from evimae_stream.types import PLACEMENTS
from evimae_stream.window import NOT_WHOLE_YET

log = logging.getLogger(__name__)

STAGES = ("wait", "assemble", "preprocess", "forward", "postprocess")
#: the stage-timing hook: ``fn(event, window index)``
StageHook = Callable[[str, int], None]


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


def window_health(buffer: StreamBuffer, missing: dict[str, str]) -> dict[str, dict]:
    """Every configured stream's health in a window's event, with why it is missing from it."""
    return {
        name: event_health(c, None if missing.get(name) == "not configured" else missing.get(name))
        for name, c in buffer.health().items()
    }


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
        on_stage: StageHook | None = None,
        model_name: str = "",
        language=None,
    ) -> None:
        self.model = model
        #: a :class:`~evimae_stream.language.scorer.LanguageScorer`: score the windows against
        #: its vocabulary instead of the model's classes (``--vocabulary``)
        self.language = language
        self._scored_by: tuple | None = None  # the vocabulary the smoother's history is over
        self.model_name = model_name or model_id  # how the user named it, for messages
        self.spec = spec
        self.config = config
        self.model_id = model_id
        self.backend = backend
        self.smoother = Smoother(config.smooth)
        self.on_stage = on_stage
        self._warm = False  # a window has had every started stream whole
        if config.threads is None:
            self.threads, self.threads_why = choose_threads(model)
        else:
            self.threads, self.threads_why = config.threads, "--threads"
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def assemble(
        self, buffer: StreamBuffer, tick: int, index: int, early: Job | None = None
    ) -> Job:
        """Build window ``index`` ending at tick time ``tick`` (buffers already released).

        ``early``: the same window assembled and preprocessed before the cut (during the guard);
        when its raw inputs are exactly the ones found now, its model inputs are used instead of
        preprocessing again (health and everything else is computed afresh)."""
        spec = self.spec
        if self.on_stage is not None:
            self.on_stage("assemble", index)
        t0 = time.perf_counter()
        t_ref = buffer.default_t_ref(tick)
        window = buffer.assemble_window(spec.geometry, t_ref if t_ref is not None else tick)
        present, missing = usable_imus(window, spec)
        frames, ftimes = window.frames, window.frame_times_ns
        plan = self._warm_up(plan_window(present, frames is not None, spec.modes, missing), missing)
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
        job = Job(
            index=index,
            tick_ns=tick,
            t_ref_ns=t_ref,
            plan=plan,
            inputs=inputs,
            newest_ns=newest,
            health=window_health(buffer, missing),
            imus=imus,
            stages_ms={"assemble": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3},
            queued_at=time.perf_counter(),
            raw=raw,
            early=reused,
        )
        if self.on_stage is not None:
            self.on_stage("assembled", index)
        return job

    def _warm_up(self, plan: Plan, missing: dict[str, str]) -> Plan:
        """No prediction until every stream that has started reaches back to a window's start:
        the run's first windows would otherwise drop the streams still filling (a video-only
        guess while every IMU is flowing). Later, a stream that starts late is just missing."""
        if self._warm:
            return plan
        filling = [name for name, why in missing.items() if why.startswith(NOT_WHOLE_YET)]
        if filling:
            return Plan(None, reason=f"warming up: {', '.join(filling)}: {NOT_WHOLE_YET}")
        self._warm = plan.mode is not None
        return plan

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
        language = self.language  # read once: the GUI may replace it meanwhile
        verifying = self.backend is None and language is None
        backend = self.ensure_backend(job.inputs) if language is None else None
        if self.on_stage is not None:
            self.on_stage("forward", job.index)
        t0 = time.perf_counter()
        if backend is not None:
            logits, classes, scored_by = backend.forward(job.inputs, job.plan.mode), None, None
        else:
            logits, classes, scored_by = self._vocabulary_logits(language, pred, job)
        if scored_by != self._scored_by:  # other names: the smoothing starts over
            self._scored_by = scored_by
            self.smoother = Smoother(self.config.smooth)
        classes = classes or self.spec.classes
        t1 = time.perf_counter()
        if not bool(torch.isfinite(logits).all()):
            return self._not_finite(pred, verifying, (t1 - t0) * 1e3)
        probs = self.smoother.update(job.index, softmax(logits))
        order = np.argsort(-probs, kind="stable")[: self.config.topk]
        pred.probs = probs
        pred.label = classes[int(order[0])]
        pred.score = float(probs[order[0]])
        pred.topk = [(classes[int(i)], float(probs[i])) for i in order]
        pred.stages_ms["forward"] = (t1 - t0) * 1e3
        pred.stages_ms["postprocess"] = (time.perf_counter() - t1) * 1e3
        if self.on_stage is not None:
            self.on_stage("postprocessed", job.index)
        return pred

    @staticmethod
    def _vocabulary_logits(
        language, pred: Prediction, job: Job
    ) -> tuple[torch.Tensor, tuple, tuple]:
        """The window scored against the language scorer's vocabulary (eager model), its names,
        and which vocabulary that was (the scorer and its version)."""
        logits, names, pred.embeddings, version = language.score(job.inputs, job.plan.mode)
        return logits, names, (id(language), version)

    @property
    def classes(self) -> tuple[str, ...]:
        """What the predictions name: the vocabulary's names, or the model's classes."""
        return self.language.names if self.language is not None else self.spec.classes

    def _not_finite(self, pred: Prediction, verifying: bool, forward_ms: float) -> Prediction:
        """A window whose logits are NaN or infinite gets no prediction and says why (the sinks
        and the smoother never see them); on the window the backend was verified on, the model
        itself is refused: its inputs passed the input checks, so the weights are at fault."""
        if verifying:
            raise ArtifactError(
                f"{self.model_name}: non-finite logits on its verification window "
                f"(window {pred.index}, {pred.mode}); its weights hold NaN or inf values; "
                "re-export or retrain it"
            )
        log.warning("window %d: the model's logits are not finite; no prediction", pred.index)
        pred.reason = "the model's logits are not finite (NaN or inf): no prediction"
        pred.mode, pred.modalities, pred.imus = None, (), []
        pred.stages_ms["forward"] = forward_ms
        return pred
