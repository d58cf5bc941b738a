"""Configuration of a synthetic wearer: script, sensors, timing imperfections and camera."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evimae_stream.errors import InputError
from evimae_stream.synthetic.motions import ACTIONS, IDLE
from evimae_stream.types import PLACEMENTS

#: every non-idle action, in a fixed order
DEFAULT_ACTIONS: tuple[str, ...] = tuple(a for a in ACTIONS if a != IDLE)


def _bad(field: str, value: object, need: str) -> InputError:
    return InputError(f"synthetic wearer: {field}={value!r} is invalid; {need}")


@dataclass(frozen=True)
class WearerConfig:
    """Everything that defines a synthetic wearer; the same config always gives the same data.

    Script: ``actions`` action segments chosen from ``action_names`` (every name once before any
    repeats), separated by idle gaps, with smooth ``transition_s`` blends. With ``minutes`` the
    segment durations are scaled to fill exactly that long; otherwise they are drawn from
    ``action_s`` and ``idle_s`` (min, max seconds).

    IMUs (at the four placements): nominal rate ``imu_rate_hz`` (one value, or one per placement
    in PLACEMENTS order), acc (+ gyro when ``gyro``) with white noise ``noise_g``/``gyro_noise_dps``
    and a per-sensor bias up to ``bias_g``/``gyro_bias_dps``; the device clock runs fast or slow
    by up to ±``drift_ppm``; a sample reaches the host ``latency_s`` + an exponential jitter of
    mean ``jitter_s`` (capped at ``max_jitter_s``) after it was taken; ``drop_fraction`` of the
    samples are lost; values saturate at ±``range_g``.

    Camera: ``width`` × ``height`` RGB at ``fps``, horizontal field of view ``hfov_deg``.
    """

    seed: int = 0
    actions: int = 8
    minutes: float | None = None
    action_names: tuple[str, ...] = DEFAULT_ACTIONS
    action_s: tuple[float, float] = (8.0, 14.0)
    idle_s: tuple[float, float] = (2.0, 4.0)
    transition_s: float = 0.75
    imu_rate_hz: float | tuple[float, ...] = 50.0
    gyro: bool = True
    noise_g: float = 0.01
    bias_g: float = 0.03
    gyro_noise_dps: float = 0.5
    gyro_bias_dps: float = 2.0
    range_g: float = 8.0
    drift_ppm: float = 100.0
    latency_s: float = 0.004
    jitter_s: float = 0.002
    max_jitter_s: float = 0.008
    drop_fraction: float = 0.005
    fps: float = 30.0
    width: int = 320
    height: int = 240
    hfov_deg: float = 90.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_names", tuple(self.action_names))
        if isinstance(self.imu_rate_hz, (list, tuple)):
            object.__setattr__(self, "imu_rate_hz", tuple(float(r) for r in self.imu_rate_hz))
        if not isinstance(self.seed, int) or self.seed < 0:
            raise _bad("seed", self.seed, "use a non-negative integer")
        if not isinstance(self.actions, int) or self.actions < 1:
            raise _bad("actions", self.actions, "use at least 1 action")
        if self.minutes is not None:
            if not (math.isfinite(self.minutes) and self.minutes > 0):
                raise _bad("minutes", self.minutes, "use a positive number of minutes")
            per_action = self.minutes * 60.0 / self.actions
            if per_action < 4.0 * self.transition_s + 2.0:
                raise _bad(
                    "minutes",
                    self.minutes,
                    f"{self.actions} actions need at least "
                    f"{self.actions * (4.0 * self.transition_s + 2.0) / 60.0:.2f} minutes",
                )
        unknown = [a for a in self.action_names if a not in ACTIONS or a == IDLE]
        if unknown or not self.action_names:
            raise _bad("action_names", unknown, f"choose from {', '.join(DEFAULT_ACTIONS)}")
        for name in ("action_s", "idle_s"):
            lo, hi = getattr(self, name)
            if not (2.0 * self.transition_s <= lo <= hi):
                raise _bad(name, (lo, hi), "need 2 x transition_s <= min <= max")
        if not (0.0 < self.transition_s <= 5.0):
            raise _bad("transition_s", self.transition_s, "use 0 < transition_s <= 5")
        rates = self.rates
        if len(rates) != len(PLACEMENTS) or not all(1.0 <= r <= 1000.0 for r in rates):
            raise _bad("imu_rate_hz", self.imu_rate_hz, "use one or four rates in 1..1000 Hz")
        for name in ("noise_g", "bias_g", "gyro_noise_dps", "gyro_bias_dps", "latency_s"):
            if not getattr(self, name) >= 0.0:
                raise _bad(name, getattr(self, name), "use a value >= 0")
        if not (0.0 <= self.drift_ppm <= 10_000.0):
            raise _bad("drift_ppm", self.drift_ppm, "use 0..10000 ppm")
        if not (self.jitter_s >= 0.0 and 0.0 <= self.max_jitter_s < 0.9 / max(rates)):
            raise _bad(
                "max_jitter_s", self.max_jitter_s, "keep the jitter below 0.9 sample periods"
            )
        if not (0.0 <= self.drop_fraction < 0.5):
            raise _bad("drop_fraction", self.drop_fraction, "use 0 <= drop_fraction < 0.5")
        if not self.range_g > 1.5:
            raise _bad("range_g", self.range_g, "use a range above 1.5 g")
        if not (1.0 <= self.fps <= 240.0):
            raise _bad("fps", self.fps, "use 1..240 frames per second")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 16 <= v <= 4096):
                raise _bad(name, v, "use an integer from 16 to 4096 pixels")
        if not (30.0 <= self.hfov_deg <= 150.0):
            raise _bad("hfov_deg", self.hfov_deg, "use 30..150 degrees")

    @property
    def rates(self) -> tuple[float, ...]:
        """Nominal rate of each placement, in PLACEMENTS order."""
        if isinstance(self.imu_rate_hz, tuple):
            return self.imu_rate_hz
        return (float(self.imu_rate_hz),) * len(PLACEMENTS)
