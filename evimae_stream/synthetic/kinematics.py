"""From body trajectories to what sensors measure: rotations, specific force, angular rate.

An accelerometer measures specific force, the body's acceleration minus gravity, in its own
frame: ``f = Rᵀ (a + g ẑ)``, so a sensor at rest reads +1 g along the world's up axis. A gyro
measures the body angular velocity ``ω = vee(Rᵀ Ṙ)``. ``R`` is world-from-sensor.
"""

from __future__ import annotations

import numpy as np

from evimae_stream.synthetic.jet import Jet

#: standard gravity (m/s²): 1 g
G0 = 9.80665


def _rz(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*a.shape, 3, 3)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*a.shape, 3, 3)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*a.shape, 3, 3)


def _drz(a: np.ndarray) -> np.ndarray:
    c, s, z = np.cos(a), np.sin(a), np.zeros_like(a)
    return np.stack([-s, -c, z, c, -s, z, z, z, z], -1).reshape(*a.shape, 3, 3)


def _dry(a: np.ndarray) -> np.ndarray:
    c, s, z = np.cos(a), np.sin(a), np.zeros_like(a)
    return np.stack([-s, z, c, z, z, z, -c, z, -s], -1).reshape(*a.shape, 3, 3)


def _drx(a: np.ndarray) -> np.ndarray:
    c, s, z = np.cos(a), np.sin(a), np.zeros_like(a)
    return np.stack([z, z, z, z, -s, -c, z, c, -s], -1).reshape(*a.shape, 3, 3)


def euler_to_matrix(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 3, 3) world-from-body rotations ``Rz(yaw) · Ry(pitch) · Rx(roll)``."""
    return _rz(yaw) @ _ry(pitch) @ _rx(roll)


def rotation_and_rate(angles: tuple[Jet, Jet, Jet]) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (N,3,3) and body angular velocity (N,3) in rad/s from yaw/pitch/roll jets."""
    y, p, r = angles
    rz, ry, rx = _rz(y.v), _ry(p.v), _rx(r.v)
    R = rz @ ry @ rx
    dR = (
        _drz(y.v) @ ry @ rx * np.asarray(y.d)[..., None, None]
        + rz @ _dry(p.v) @ rx * np.asarray(p.d)[..., None, None]
        + rz @ ry @ _drx(r.v) * np.asarray(r.d)[..., None, None]
    )
    W = np.swapaxes(R, -1, -2) @ dR  # skew-symmetric: [ω]×
    omega = np.stack([W[..., 2, 1], W[..., 0, 2], W[..., 1, 0]], -1)
    return R, omega


def small_rotation(angles_rad: np.ndarray) -> np.ndarray:
    """(3, 3) rotation from three small Euler angles (yaw, pitch, roll): a sensor's mounting."""
    a = np.asarray(angles_rad, dtype=np.float64).reshape(3, 1)
    return euler_to_matrix(a[0], a[1], a[2])[0]


def specific_force_g(R: np.ndarray, acc_world: np.ndarray) -> np.ndarray:
    """(N, 3) accelerometer reading in g: ``Rᵀ (a/G0 + ẑ)`` for world acceleration in m/s²."""
    f = acc_world / G0
    f[:, 2] += 1.0
    return np.einsum("nji,nj->ni", R, f)
