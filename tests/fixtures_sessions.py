"""Builders for session test data: frames that carry their own index, written sessions.

Frames encode their index as 12 black/white blocks (one bit each), so a test can tell which
frame a lossy video decoder returned without trusting the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BITS = 12


def coded_frame(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """An RGB (H, W, 3) uint8 frame whose top half encodes ``index`` in 12 blocks (LSB first)."""
    img = np.full((height, width, 3), 128, np.uint8)
    bw = width // BITS
    for b in range(BITS):
        if (index >> b) & 1:
            img[: height // 2, b * bw : (b + 1) * bw] = 255
        else:
            img[: height // 2, b * bw : (b + 1) * bw] = 0
    img[height // 2 :, :, 0] = np.uint8(index % 256)  # some colour that also changes
    return img


def decode_index(rgb: np.ndarray) -> int:
    """The index :func:`coded_frame` wrote into ``rgb`` (robust to lossy compression)."""
    height, width = rgb.shape[:2]
    bw = width // BITS
    out = 0
    for b in range(BITS):
        block = rgb[2 : height // 2 - 2, b * bw + 2 : (b + 1) * bw - 2]
        if block.mean() > 128:
            out |= 1 << b
    return out


def imu_values(i: np.ndarray | int, channels: int = 3) -> np.ndarray:
    """Deterministic sample values for sample index ``i``: (…, channels) float32."""
    i = np.asarray(i, dtype=np.float64)
    cols = [np.sin(0.1 * i + k) * (k + 1) for k in range(channels)]
    return np.stack(cols, axis=-1).astype(np.float32)


def write_session(path: Path, seconds: float = 2.0, t0_ns: int = 5_000_000_000, **kw) -> Path:
    """A small complete session: left_arm acc+t_dev at 50 Hz, right_leg acc+gyro at 100 Hz,
    96x64 camera at 30 fps, two labels."""
    from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter

    gyro = ("ax", "ay", "az", "gx", "gy", "gz")
    imu = {"left_arm": ImuSpec(50.0, source="serial:/dev/null"), "right_leg": ImuSpec(100.0, gyro)}
    with SessionWriter(
        path, imu=imu, camera=CameraSpec(96, 64, 30.0), t0_ns=t0_ns, wall_start="fixed", **kw
    ) as w:
        n50 = int(seconds * 50)
        for i in range(n50):
            w.add_imu("left_arm", t0_ns + i * 20_000_000, imu_values(i), t_dev=1000.0 + i * 0.02)
        n100 = int(seconds * 100)
        idx = np.arange(n100)
        w.add_imu_block("right_leg", t0_ns + idx * 10_000_000, imu_values(idx, 6))
        for i in range(int(seconds * 30)):
            w.add_frame(t0_ns + i * 33_333_333, coded_frame(i))
        w.add_label(0.0, 1.0, "walking")
        w.add_label(1.0, seconds, 'stirring "fast", gently')
    return Path(path)
