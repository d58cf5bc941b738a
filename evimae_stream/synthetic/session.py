"""Writing a synthetic wearer to disk as a session in our recording format (DESIGN §5)."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter
from evimae_stream.synthetic.config import WearerConfig
from evimae_stream.synthetic.narrations import narrate
from evimae_stream.synthetic.wearer import SyntheticWearer
from evimae_stream.types import PLACEMENTS

log = logging.getLogger(__name__)

#: host monotonic time of the session start, fixed so that sessions are byte-identical
DEFAULT_T0_NS = 1_000_000_000_000
#: wall-clock start written to session.json, fixed for the same reason
DEFAULT_WALL_START = "2024-01-01T00:00:00.000+00:00"
#: seconds of data generated and written per step
CHUNK_S = 5.0
#: sessions at least this long show a progress bar when asked to
PROGRESS_MIN_S = 30.0


@dataclass(frozen=True)
class SessionSummary:
    """What :func:`generate_session` wrote."""

    path: Path
    duration_s: float
    script: list[tuple[float, float, str]]
    classes: list[str]
    imu_samples: dict[str, int]
    frames: int
    elapsed_s: float

    def line(self) -> str:
        """One line for people: what is in the session and how fast it was made."""
        acts = [label for _, _, label in self.script if label != self.classes[0]]
        video = f"{self.frames} frames" if self.frames else "no video"
        speed = self.duration_s / self.elapsed_s if self.elapsed_s > 0 else float("inf")
        return (
            f"{len(acts)} actions ({len(set(acts))} distinct), {self.duration_s:.1f} s, "
            f"{sum(self.imu_samples.values())} IMU samples on {len(self.imu_samples)} IMUs, "
            f"{video}; generated in {self.elapsed_s:.1f} s ({speed:.1f}x real time)"
        )


def _ns(t0_ns: int, t_s: np.ndarray) -> np.ndarray:
    return t0_ns + np.round(np.asarray(t_s) * 1e9).astype(np.int64)


def generate_session(
    out_dir: str | os.PathLike,
    actions: int = 8,
    minutes: float | None = 2.0,
    seed: int = 0,
    *,
    video: bool = True,
    size: tuple[int, int] = (320, 240),
    t0_ns: int = DEFAULT_T0_NS,
    wall_start: str = DEFAULT_WALL_START,
    progress: bool = False,
    **config: object,
) -> SessionSummary:
    """Simulate a wearer doing ``actions`` actions over ``minutes`` and record it to ``out_dir``.

    Writes the four IMUs, the head camera (unless ``video`` is False) at ``size`` (W, H), and
    every script segment (idle included) to labels.csv with a narration of each
    (:mod:`evimae_stream.synthetic.narrations`); ``session.json["meta"]`` holds the
    class list and the generator config. Same arguments → same bytes. Extra keyword arguments
    are :class:`WearerConfig` fields (e.g. ``imu_rate_hz=100.0``, ``gyro=False``).
    """
    width, height = size
    cfg = WearerConfig(
        seed=seed, actions=actions, minutes=minutes, width=width, height=height, **config
    )
    wearer = SyntheticWearer(cfg)
    started = time.perf_counter()
    meta = {
        "classes": wearer.classes,
        "generator": "evimae_stream.synthetic",
        "synthetic": dataclasses.asdict(cfg),
    }
    imu = {
        p: ImuSpec(rate_hz=rate, channels=wearer.channels, source=f"synthetic:seed={seed}")
        for p, rate in zip(PLACEMENTS, cfg.rates, strict=True)
    }
    camera = CameraSpec(width=width, height=height, fps=cfg.fps, source="synthetic")
    counts = dict.fromkeys(PLACEMENTS, 0)
    frames = 0
    end = wearer.duration_s + 0.1  # the last samples arrive a little after the last instant
    steps = np.append(np.arange(0.0, end, CHUNK_S), end)
    show = progress and wearer.duration_s >= PROGRESS_MIN_S
    with (
        SessionWriter(
            out_dir, imu=imu, camera=camera if video else None, t0_ns=t0_ns, meta=meta,
            wall_start=wall_start,
        ) as writer,
        tqdm(
            total=round(wearer.duration_s), unit="s", desc="synth", file=sys.stderr,
            disable=not show, leave=False,
        ) as bar,
    ):  # fmt: skip
        for a, b in itertools.pairwise(steps.tolist()):
            for p in PLACEMENTS:
                s = wearer.imu_samples(p, a, b)
                writer.add_imu_block(p, _ns(t0_ns, s.t_host_s), s.values, s.t_dev_s)
                counts[p] += len(s.t_host_s)
            if video:
                ft = wearer.frame_times(a, b)
                for t_ns, rgb in zip(
                    _ns(t0_ns, ft.t_host_s).tolist(), wearer.render_frames(ft.t_s), strict=True
                ):
                    writer.add_frame(t_ns, rgb)
                frames += len(ft.index)
            bar.update(round(min(b, wearer.duration_s)) - bar.n)
        texts = narrate(wearer.script, seed)
        for (start, stop, label), text in zip(wearer.script, texts, strict=True):
            writer.add_label(start, stop, label, text)
    summary = SessionSummary(
        path=Path(out_dir),
        duration_s=wearer.duration_s,
        script=wearer.script,
        classes=wearer.classes,
        imu_samples=counts,
        frames=frames,
        elapsed_s=time.perf_counter() - started,
    )
    log.info("%s: %s", out_dir, summary.line())
    return summary
