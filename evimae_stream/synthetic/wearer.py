"""A simulated person wearing four IMUs and a head camera, as deterministic functions of time.

:class:`SyntheticWearer` turns a :class:`~.config.WearerConfig` into a *script* (actions with
durations and idle gaps), a body model (every body part's trajectory, blended smoothly across
transitions) and the sensors that observe it: IMU samples whose acceleration is the analytic
second derivative of the simulated wrist/ankle position plus gravity, rotated into the sensor
frame, with noise, bias, clock drift, arrival jitter and drops; and head-camera frames rendered
from the same head and wrist poses. Everything depends only on the config (seed included) and the
time asked for, so a live driver can ask chunk by chunk and get what a one-shot call gives.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.synthetic import noise
from evimae_stream.synthetic.config import WearerConfig
from evimae_stream.synthetic.jet import Jet, as_jet, cos, full
from evimae_stream.synthetic.kinematics import (
    rotation_and_rate,
    small_rotation,
    specific_force_g,
)
from evimae_stream.synthetic.motions import ACTIONS, BODIES, IDLE, Person
from evimae_stream.synthetic.render import Arm, HeadCamera
from evimae_stream.types import ACC_AXES, GYRO_AXES, PLACEMENTS

log = logging.getLogger(__name__)

#: camera mounted on the forehead, relative to the head centre (head frame, m)
CAMERA_OFFSET = np.array([0.1, 0.0, 0.06])
_CAM_KEY = "camera"
_STREAM_LATENCY, _STREAM_DROP = 1, 2


class ImuSamples(NamedTuple):
    """Samples of one IMU: host arrival time (s from session start), device time (s), values.

    ``values`` is (N, 3) acceleration in g, or (N, 6) with gyro in deg/s appended.
    """

    t_host_s: np.ndarray
    t_dev_s: np.ndarray
    values: np.ndarray


class FrameTimes(NamedTuple):
    """Camera frames: global index, host arrival time and exposure time (s from session start)."""

    index: np.ndarray
    t_host_s: np.ndarray
    t_s: np.ndarray


@dataclass(frozen=True)
class _Item:
    """One script entry with its per-repetition modulation parameters."""

    start: float
    end: float
    label: str
    f0: float  # base repetition frequency, Hz
    a0: float  # amplitude scale
    fm_depth: float  # frequency modulation depth (fraction)
    fm_hz: float
    fm_phase: float
    am_depth: float  # amplitude modulation depth (fraction)
    am_hz: float
    am_phase: float
    phase0: float

    def phase(self, T: Jet) -> Jet:
        """Phase (rad) whose rate is ``2π f0 (1 + depth · sin(2π fm t + φ))``."""
        w = 2 * math.pi * self.fm_hz
        drift = (-self.fm_depth / w) * cos(w * T + self.fm_phase)
        return 2 * math.pi * self.f0 * (T + drift) + self.phase0

    def amp(self, T: Jet) -> Jet:
        return self.a0 * (1.0 + self.am_depth * cos(2 * math.pi * self.am_hz * T + self.am_phase))


@dataclass(frozen=True)
class _Sensor:
    """Per-IMU constants drawn from the seed."""

    rate_hz: float
    drift: float  # device clock rate error (fraction: 1e-6 = 1 ppm)
    dev_offset_s: float
    mount: np.ndarray  # (3, 3) limb-from-sensor rotation
    bias: np.ndarray  # (6,) acc bias in g, gyro bias in deg/s
    key: int


def _ramp(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smootherstep r(u) = 6u⁵ − 15u⁴ + 10u³ on [0, 1] with r', r'' (clamped outside)."""
    u = np.clip(u, 0.0, 1.0)
    r = u * u * u * (u * (6.0 * u - 15.0) + 10.0)
    d = 30.0 * u * u * (1.0 - u) ** 2
    dd = 60.0 * u * (1.0 - u) * (1.0 - 2.0 * u)
    return r, d, dd


def _ramp_integral(u: np.ndarray | float) -> np.ndarray:
    """∫₀ᵘ r: 0 below 0, u⁶ − 3u⁵ + 2.5u⁴ on [0, 1], 0.5 + (u − 1) above."""
    u = np.asarray(u, np.float64)
    c = np.clip(u, 0.0, 1.0)
    inside = c**4 * (c * (c - 3.0) + 2.5)
    return np.where(u > 1.0, 0.5 + (u - 1.0), inside)


class SyntheticWearer:
    """A deterministic simulated wearer (see the module docstring).

    ``script`` is the list of ``(start_s, end_s, label)`` (idle gaps included, labelled
    ``idle``); ``classes`` every label this wearer can produce (``idle`` first).
    """

    def __init__(self, cfg: WearerConfig | None = None, **overrides) -> None:
        cfg = cfg or WearerConfig()
        self.cfg = replace(cfg, **overrides) if overrides else cfg
        rng = np.random.default_rng([self.cfg.seed, 0xEF1])
        self.person = Person(
            height=float(rng.uniform(0.92, 1.08)),
            tempo=float(rng.uniform(0.9, 1.1)),
            vigor=float(rng.uniform(0.85, 1.15)),
        )
        self._items = self._make_script(rng)
        self.script: list[tuple[float, float, str]] = [
            (i.start, i.end, i.label) for i in self._items
        ]
        self.classes: list[str] = [IDLE, *self.cfg.action_names]
        self.duration_s: float = self._items[-1].end
        self._sensors = {
            p: self._make_sensor(rng, p, rate)
            for p, rate in zip(PLACEMENTS, self.cfg.rates, strict=True)
        }
        self.channels: tuple[str, ...] = ACC_AXES + (GYRO_AXES if self.cfg.gyro else ())
        self._camera: HeadCamera | None = None

    # -- construction --------------------------------------------------------------------------
    def _make_script(self, rng: np.random.Generator) -> list[_Item]:
        cfg, n, tau = self.cfg, self.cfg.actions, self.cfg.transition_s
        names: list[str] = []
        while len(names) < n:
            perm = [cfg.action_names[i] for i in rng.permutation(len(cfg.action_names))]
            if names and len(perm) > 1 and perm[0] == names[-1]:
                perm[0], perm[1] = perm[1], perm[0]
            names += perm
        names = names[:n]
        if cfg.minutes is None:
            act = rng.uniform(*cfg.action_s, size=n)
            idle = rng.uniform(*cfg.idle_s, size=n + 1)
        else:
            total = cfg.minutes * 60.0
            gap = float(np.clip(0.18 * total / n, 2.0 * tau, cfg.idle_s[1]))
            idle = np.maximum(gap * rng.uniform(0.9, 1.1, size=n + 1), 2.0 * tau)
            idle[[0, -1]] = np.maximum(idle[[0, -1]] * 0.6, 2.0 * tau)
            act = rng.uniform(0.8, 1.2, size=n)
            act *= (total - idle.sum()) / act.sum()
            if act.min() < 2.0 * tau + 0.25:
                raise InputError(
                    f"synthetic wearer: {cfg.minutes} minutes is too short for {n} actions; "
                    "give more minutes or fewer actions"
                )
        labels = [IDLE]
        durations = [idle[0]]
        for i, name in enumerate(names):
            labels += [name, IDLE]
            durations += [act[i], idle[i + 1]]
        edges = np.concatenate([[0.0], np.cumsum(durations)])
        if cfg.minutes is not None:
            edges[-1] = cfg.minutes * 60.0
        items = []
        for label, s, e in zip(labels, edges[:-1], edges[1:], strict=True):
            u = rng.uniform(size=9)
            items.append(
                _Item(
                    start=float(s),
                    end=float(e),
                    label=label,
                    f0=ACTIONS[label].freq_hz * self.person.tempo * (0.9 + 0.2 * u[0]),
                    a0=0.85 + 0.3 * u[1],
                    fm_depth=0.03 + 0.05 * u[2],
                    fm_hz=0.08 + 0.12 * u[3],
                    fm_phase=2 * math.pi * u[4],
                    am_depth=0.05 + 0.1 * u[5],
                    am_hz=0.1 + 0.2 * u[6],
                    am_phase=2 * math.pi * u[7],
                    phase0=2 * math.pi * u[8],
                )
            )
        return items

    def _make_sensor(self, rng: np.random.Generator, placement: str, rate: float) -> _Sensor:
        cfg = self.cfg
        bias = np.concatenate(
            [
                rng.uniform(-cfg.bias_g, cfg.bias_g, 3),
                rng.uniform(-cfg.gyro_bias_dps, cfg.gyro_bias_dps, 3),
            ]
        )
        return _Sensor(
            rate_hz=rate,
            drift=float(rng.uniform(-cfg.drift_ppm, cfg.drift_ppm)) * 1e-6,
            dev_offset_s=float(rng.uniform(10.0, 1000.0)),
            mount=small_rotation(rng.normal(0.0, math.radians(8.0), 3)),
            bias=bias,
            key=noise.derive_key(cfg.seed, placement),
        )

    # -- script --------------------------------------------------------------------------------
    def item_at(self, t: float) -> str:
        """The script label at time ``t`` (the first/last one outside the script)."""
        for item in self._items:
            if t < item.end:
                return item.label
        return self._items[-1].label

    def sensor_info(self, placement: str) -> dict[str, float]:
        """The drawn constants of one IMU: nominal rate, clock drift (ppm), device clock offset."""
        s = self._sensor(placement)
        return {"rate_hz": s.rate_hz, "drift_ppm": s.drift * 1e6, "dev_offset_s": s.dev_offset_s}

    def _sensor(self, placement: str) -> _Sensor:
        try:
            return self._sensors[placement]
        except KeyError:
            raise InputError(
                f"synthetic wearer: unknown placement {placement!r}; use one of {PLACEMENTS}"
            ) from None

    # -- body model ----------------------------------------------------------------------------
    def _weight(self, i: int, T: Jet) -> Jet:
        item, tau = self._items[i], self.cfg.transition_s
        w = Jet(1.0)
        if i > 0:
            r, d, dd = _ramp((T.v - item.start) / tau + 0.5)
            w = Jet(r, d / tau, dd / tau**2)
        if i < len(self._items) - 1:
            r, d, dd = _ramp((T.v - item.end) / tau + 0.5)
            w = w * Jet(1.0 - r, -d / tau, -dd / tau**2)
        return w

    def _blend(
        self, t: np.ndarray, bodies: tuple[str, ...]
    ) -> dict[str, tuple[list[Jet], list[Jet]]]:
        """Position and yaw/pitch/roll jets of ``bodies`` at times ``t`` (script-blended)."""
        n, half = len(t), self.cfg.transition_s / 2.0
        out = {
            b: ([full(0.0, n) for _ in range(3)], [full(0.0, n) for _ in range(3)]) for b in bodies
        }
        if n == 0:
            return out
        last = len(self._items) - 1
        for i, item in enumerate(self._items):
            lo = -np.inf if i == 0 else item.start - half
            hi = np.inf if i == last else item.end + half
            idx = np.nonzero((t >= lo) & (t < hi))[0]
            if idx.size == 0:
                continue
            T = Jet(t[idx], 1.0, 0.0)
            w = self._weight(i, T)
            poses = ACTIONS[item.label].motion(T, item.phase(T), item.amp(T), self.person)
            for b in bodies:
                for acc, comps in zip(out[b], poses[b], strict=True):
                    for target, comp in zip(acc, comps, strict=True):
                        j = w * as_jet(comp)
                        target.v[idx] += j.v
                        target.d[idx] += j.d
                        target.dd[idx] += j.dd
        return out

    def pose(self, body: str, t) -> tuple[np.ndarray, np.ndarray]:
        """Position (N, 3) in m and world-from-frame rotation (N, 3, 3) of a body at times ``t``.

        For an IMU placement the frame is the sensor's (mounting rotation included); for
        ``head`` it is the head's (x forward, y left, z up).
        """
        t = np.atleast_1d(np.asarray(t, np.float64))
        if body not in BODIES:
            raise InputError(f"synthetic wearer: unknown body {body!r}; use one of {BODIES}")
        pos, ang = self._blend(t, (body,))[body]
        R, _ = rotation_and_rate(tuple(ang))
        if body != "head":
            R = R @ self._sensor(body).mount
        return np.stack([p.v for p in pos], -1), R

    def true_imu(self, placement: str, t) -> np.ndarray:
        """Noise-free IMU reading (N, 3|6) at times ``t``: specific force in g, gyro in deg/s."""
        t = np.atleast_1d(np.asarray(t, np.float64))
        sensor = self._sensor(placement)
        pos, ang = self._blend(t, (placement,))[placement]
        R_limb, omega = rotation_and_rate(tuple(ang))
        R = R_limb @ sensor.mount
        acc_world = np.stack([p.dd for p in pos], -1)  # (N, 3) m/s²
        f = specific_force_g(R, acc_world)
        if not self.cfg.gyro:
            return f
        gyro = np.degrees(omega @ sensor.mount)  # sensor frame: mountᵀ ω
        return np.concatenate([f, gyro], -1)

    # -- IMU sampling --------------------------------------------------------------------------
    def _sample_times(self, s: _Sensor, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.cfg
        t_true = k / (s.rate_hz * (1.0 + s.drift))
        u = noise.uniform(s.key, k, _STREAM_LATENCY)
        jitter = np.minimum(-cfg.jitter_s * np.log1p(-u), cfg.max_jitter_s)
        t_host = t_true + cfg.latency_s + jitter
        return t_true, t_host, s.dev_offset_s + k / s.rate_hz

    def imu_samples(self, placement: str, t_start: float, t_end: float) -> ImuSamples:
        """The samples of one IMU that reach the host in ``[t_start, t_end)`` (s from start).

        Consecutive windows partition the stream exactly, so chunked calls equal one call.
        """
        cfg, s = self.cfg, self._sensor(placement)
        eff = s.rate_hz * (1.0 + s.drift)
        k_lo = max(0, math.floor((t_start - cfg.latency_s - cfg.max_jitter_s) * eff) - 1)
        k_hi = min(math.ceil(self.duration_s * eff), math.ceil((t_end - cfg.latency_s) * eff) + 1)
        k = np.arange(k_lo, max(k_lo, k_hi), dtype=np.int64)
        t_true, t_host, t_dev = self._sample_times(s, k)
        keep = (t_host >= t_start) & (t_host < t_end) & (t_true < self.duration_s)
        keep &= noise.uniform(s.key, k, _STREAM_DROP) >= cfg.drop_fraction
        k, t_true, t_host, t_dev = k[keep], t_true[keep], t_host[keep], t_dev[keep]
        values = self.true_imu(placement, t_true)
        scale = np.array([cfg.noise_g] * 3 + [cfg.gyro_noise_dps] * 3)[: values.shape[1]]
        for axis in range(values.shape[1]):
            values[:, axis] += s.bias[axis] + scale[axis] * noise.normal(s.key, k, 10 + axis)
        values[:, :3] = np.clip(values[:, :3], -cfg.range_g, cfg.range_g)
        if values.shape[1] == 6:
            values[:, 3:] = np.clip(values[:, 3:], -2000.0, 2000.0)
        return ImuSamples(t_host, t_dev, values.astype(np.float32))

    # -- camera --------------------------------------------------------------------------------
    def frame_times(self, t_start: float, t_end: float) -> FrameTimes:
        """Camera frames that reach the host in ``[t_start, t_end)``: exposure at i / fps."""
        fps, last = self.cfg.fps, math.ceil(self.duration_s * self.cfg.fps)
        i = np.arange(
            max(0, math.floor((t_start - 0.03) * fps)), min(last, math.ceil(t_end * fps) + 1)
        )
        t = i / fps
        key = noise.derive_key(self.cfg.seed, _CAM_KEY)
        t_host = t + 0.015 + np.minimum(-0.003 * np.log1p(-noise.uniform(key, i)), 0.012)
        keep = (t_host >= t_start) & (t_host < t_end) & (t < self.duration_s)
        return FrameTimes(i[keep], t_host[keep], t[keep])

    @property
    def camera(self) -> HeadCamera:
        """The renderer (built on first use: textures are drawn from the seed)."""
        if self._camera is None:
            c = self.cfg
            self._camera = HeadCamera(c.width, c.height, c.hfov_deg, c.seed)
        return self._camera

    def odometer(self, t: float) -> float:
        """Distance walked (m) by time ``t``: scrolls the floor during walking and jogging."""
        tau, dist, last = self.cfg.transition_s, 0.0, len(self._items) - 1
        for i, item in enumerate(self._items):
            speed = ACTIONS[item.label].speed
            if speed == 0.0 or item.start - tau > t:
                continue
            if i == 0:
                rise = t
            else:
                a = (np.array([t, 0.0]) - item.start) / tau + 0.5
                rise = tau * float(_ramp_integral(a[0]) - _ramp_integral(a[1]))
            fall = 0.0
            if i < last:
                b = (np.array([t, 0.0]) - item.end) / tau + 0.5
                fall = tau * float(_ramp_integral(b[0]) - _ramp_integral(b[1]))
            dist += speed * (rise - fall)
        return dist

    def render_frames(self, times) -> list[np.ndarray]:
        """RGB frames (H, W, 3) uint8 of the head camera at exposure times ``times`` (s)."""
        t = np.atleast_1d(np.asarray(times, np.float64))
        jets = self._blend(t, ("head", "left_arm", "right_arm"))
        R_head, _ = rotation_and_rate(tuple(jets["head"][1]))
        head = np.stack([p.v for p in jets["head"][0]], -1)
        cams = head + R_head @ CAMERA_OFFSET
        arms = {}
        for name in ("left_arm", "right_arm"):
            R, _ = rotation_and_rate(tuple(jets[name][1]))
            arms[name] = (np.stack([p.v for p in jets[name][0]], -1), R)
        frames = []
        for n, tn in enumerate(t):
            spec = ACTIONS[self.item_at(float(tn))]
            frames.append(
                self.camera.render(
                    cams[n],
                    R_head[n],
                    wall_x=spec.wall_x,
                    odometer=self.odometer(float(tn)),
                    props=spec.props,
                    arms={k: Arm(p[n], R[n]) for k, (p, R) in arms.items()},
                )
            )
        return frames

    def render_frame(self, t: float) -> np.ndarray:
        """The head camera's RGB frame (H, W, 3) uint8 at time ``t`` (deterministic)."""
        return self.render_frames([t])[0]
