"""Shared makers for the runtime and CLI tests: a small model artifact and synthetic sessions."""

from __future__ import annotations

from pathlib import Path

import torch

from evimae_stream.artifact import ModelMeta, save_artifact
from evimae_stream.model import create_model
from evimae_stream.runtime.events import Prediction
from evimae_stream.synthetic import generate_session

#: the synthetic wearer's classes (session.json meta lists them; a fixed list keeps tests simple)
SYNTH_CLASSES = [
    "idle", "walking", "jogging", "waving", "stirring", "chopping", "push-ups",
    "jumping-jacks", "reaching",
]  # fmt: skip


def make_artifact(
    out: Path,
    modes=("multimodal", "imu_only", "video_only"),
    seed: int = 0,
    classes=SYNTH_CLASSES,
    window_s: float = 2.0,
) -> Path:
    """A randomly initialised one-block tiny model as an artifact directory."""
    torch.manual_seed(seed)
    model = create_model("evimae_tiny", len(classes), imu_depth=1, video_depth=1)
    meta = ModelMeta(
        variant="evimae_tiny",
        model_config=model.cfg.to_dict(),
        classes=list(classes),
        imu_rate_hz=50.0,
        window_s=window_s,
        norm_mean=-51.17,
        norm_std=26.19,
        num_frames=model.cfg.num_frames,
        img_size=model.cfg.img_size,
        video_span_s=2.0,
        modes=list(modes),
    )
    return save_artifact(model, meta, out)


def make_session(out: Path, seconds: float = 12.0, seed: int = 3, video: bool = True) -> Path:
    """A short labelled synthetic session (small frames, quick to write and decode)."""
    generate_session(
        out,
        actions=1 if seconds < 10.5 else 2,
        minutes=seconds / 60.0,
        seed=seed,
        video=video,
        size=(128, 96),
    )
    return out


def replay_at_max_speed(
    art: Path,
    sess: Path,
    sinks=(),
    *,
    stride_s: float = 0.5,
    skip_imus: tuple[str, ...] = (),
    camera: bool = True,
    overlap: bool = True,
    wrap_source=None,
):
    """Replay ``sess`` through the artifact ``art`` with the real runtime at ``--speed max``
    (eager fp32, the given sinks), leaving out the IMUs ``skip_imus`` and, without ``camera``,
    the camera; ``wrap_source`` may wrap the replay source. Returns (Outputs, Recognizer)."""
    from evimae_stream.artifact import load_artifact
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel
    from evimae_stream.sessions import open_session

    model, meta = load_artifact(art)
    spec = ModelSpec.from_meta(meta)
    config = RuntimeConfig(backend="eager", stride_s=stride_s)
    composer = Composer(LoadedModel(model, spec), config, Hooks(sinks=list(sinks)))
    with open_session(sess) as session:
        result = composer.replay(session, None, skip_imus=skip_imus, camera=camera,
                                 overlap=overlap, wrap_source=wrap_source)  # fmt: skip
    return result.outputs, composer.recognizer


_NS = 1_000_000_000


def runtime_prediction(
    t_s: float, label: str | None, topk, latency_ms=12.5, origin_ns: int = 10 * _NS
) -> Prediction:
    """One of the runtime's predictions for the window ending at ``t_s`` on its timeline."""
    tick = origin_ns + round(t_s * _NS)
    return Prediction(
        index=round(t_s / 0.5),
        tick_ns=tick,
        origin_ns=origin_ns,
        t_ref_ns=tick - 20_000_000,
        label=label,
        score=topk[0][1] if label is not None else None,
        topk=list(topk),
        mode="multimodal",
        modalities=("imu", "video"),
        reason=None if label is not None else "all streams missing",
        latency_ms=latency_ms,
        emitted_unix=1_763_000_000.0,  # UNIX emission time: not a timeline position
    )
