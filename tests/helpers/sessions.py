"""Builders for session test data: frames that carry their own index, written sessions.

Frames encode their index as 12 black/white blocks (one bit each), so a test can tell which
frame a lossy video decoder returned without trusting the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter

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


# -- published layouts ---------------------------------------------------------------------------

WEAR_SLOTS = ("right_arm", "right_leg", "left_leg", "left_arm")
WEAR_HEADER = ["sbj_id", *(f"{s}_acc_{a}" for s in WEAR_SLOTS for a in "xyz"), "label"]


def write_imu_recording(path: Path, seconds: float = 10.0, rate: float = 50.0, close=True):
    """An IMU-only recording (one ``left_arm`` at rest) of ``seconds`` at ``rate`` (t0 = 0);
    the writer, closed unless ``close`` is False (a recording still going, or killed)."""
    w = SessionWriter(path, imu={"left_arm": ImuSpec(rate)}, t0_ns=0, wall_start="x")
    n = int(seconds * rate)
    t = (np.arange(n) * 1e9 / rate).astype(np.int64) + 1
    w.add_imu_block("left_arm", t, np.tile([0.0, 0.0, 1.0], (n, 1)))
    if close:
        w.close()
    return w


def read_wear_excerpt(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A real WEAR excerpt (no header: record_id, time, acc_x, acc_y, acc_z, label) →
    (times in s parsed from HH:MM:SS.ffffff, (N, 3) acc, labels with '' for null)."""
    times, acc, labels = [], [], []
    for line in path.read_text().splitlines():
        _, clock, x, y, z, label = line.split(",")
        h, m, s = clock.split(":")
        times.append(int(h) * 3600 + int(m) * 60 + float(s))
        acc.append((float(x), float(y), float(z)))
        labels.append(label.strip())
    return np.array(times), np.array(acc), labels


def label_runs(labels: list[str], rate: float) -> list[tuple[float, float, str]]:
    """(start_s, end_s, label) of each run of equal non-empty labels."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start]:
                runs.append((start / rate, i / rate, labels[start]))
            start = i
    return runs


def build_wear(root: Path, excerpt: Path, rows: int | None = None) -> Path:
    """``root/sbj_0.csv`` in WEAR's layout from a real excerpt (the sensor on the right arm,
    zeros on the other slots) and ``root/wear_split_1.json`` from its label runs."""
    from evimae_stream.datasets import WEAR_CLASSES

    _, acc, labels = read_wear_excerpt(excerpt)
    if rows is not None:
        acc, labels = acc[:rows], labels[:rows]
    root.mkdir(parents=True, exist_ok=True)
    lines = [",".join(WEAR_HEADER)]
    for (x, y, z), label in zip(acc, labels, strict=True):
        cells = (
            ["0", repr(float(x)), repr(float(y)), repr(float(z))] + ["0.0"] * 9 + [label or "null"]
        )
        lines.append(",".join(cells))
    (root / "sbj_0.csv").write_text("\n".join(lines) + "\n")
    anns = [
        {"label": lab, "segment": [s, e], "label_id": WEAR_CLASSES.index(lab)}
        for s, e, lab in label_runs(labels, 50.0)
    ]
    doc = {
        "version": "WEAR",
        "database": {
            "sbj_0": {
                "subset": "Validation",
                "duration": len(labels) / 50,
                "fps": 60,
                "annotations": anns,
            }
        },
        "label_dict": {name: i for i, name in enumerate(WEAR_CLASSES)},
    }
    (root / "wear_split_1.json").write_text(json.dumps(doc, indent=1))
    return root / "sbj_0.csv"


def write_video(path: Path, n: int, fps: float, fourcc: str, size=(96, 64)) -> Path:
    """A real video file of ``n`` :func:`coded_frame` frames."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), f"cannot write {path} with {fourcc}"
    for i in range(n):
        w.write(cv2.cvtColor(coded_frame(i, *size), cv2.COLOR_RGB2BGR))
    w.release()
    return path


CMU_SENSORS = (
    "3DMGX1_2794",
    "3DMGX1_2795",
    "3DMGX1_2796",
    "3DMGX1_3261",
    "3DMGX1_3337",
    "6DOFv4_015711",
    "6DOFv4_0160E3",
)
CMU_QUANTITIES = tuple(f"{q}_{a}" for q in ("Accel", "Gyro", "Magnetic") for a in "XYZ")


def cmu_value(row: int, sensor: int, quantity: int) -> float:
    """The value the CMU fixture writes for (row, sensor, quantity): all distinct."""
    return round(sensor + 0.1 * quantity + 0.001 * float(np.sin(row)), 6)


def build_cmummac(root: Path, rows: int = 90, t_start: float = 1234.5) -> Path:
    """``S07_Brownie.csv`` (timestamp + 63 columns grouped by quantity, slightly jittered 30 Hz
    timestamps), a 30-frame head-camera avi and a key-step CSV, in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    header = ["timestamp"] + [f"{s}_{q}" for q in CMU_QUANTITIES for s in CMU_SENSORS]
    lines = [",".join(header)]
    for r in range(rows):
        t = t_start + r / 30.0 + 0.002 * np.sin(3 * r)
        cells = [f"{t:.6f}"] + [
            repr(cmu_value(r, si, qi))
            for qi in range(len(CMU_QUANTITIES))
            for si in range(len(CMU_SENSORS))
        ]
        lines.append(",".join(cells))
    path = root / "S07_Brownie.csv"
    path.write_text("\n".join(lines) + "\n")
    write_video(root / "S07_Brownie_7150991-1431.avi", 30, 30.0, "MJPG")
    (root / "S07_Brownie_keysteps.csv").write_text(
        '0.0,1.2,"2 stir the mix"\n1.2,2.5,"1 crack egg"\n'
    )
    return path


def build_release(root: Path, wear_excerpt: Path) -> Path:
    """``wear-release/`` with a WEAR clip (250×14, from the real excerpt) and a CMU clip
    (150×64), a labels JSON, class_labels_indices.csv and one clip video."""
    rel = root / "wear-release"
    (rel / "cav_label" / "train_finetune").mkdir(parents=True)
    (rel / "imu").mkdir()
    (rel / "video").mkdir()
    _, acc, labels = read_wear_excerpt(wear_excerpt)
    lines = [",".join(WEAR_HEADER)]
    for k in range(250):
        slots = [acc[k] * (j + 1) for j in range(4)]  # right_arm ×1, right_leg ×2, ...
        cells = ["3"] + [repr(float(v)) for s in slots for v in s] + [labels[k] or "null"]
        lines.append(",".join(cells))
    (rel / "imu" / "wear_clip.csv").write_text("\n".join(lines) + "\n")
    cmu = build_cmummac(root / "cmu_tmp", rows=150)
    (rel / "imu" / "cmu_clip.csv").write_text(cmu.read_text())
    write_video(rel / "video" / "wear_clip.mp4", 10, 30.0, "mp4v")
    (rel / "class_labels_indices.csv").write_text(
        'index,mid,display_name\n0,a0,"jogging"\n1,a1,"push-ups (complex)"\n2,a2,"lunges"\n'
    )
    doc = {
        "data": [
            {
                "imu": "imu/wear_clip.csv",
                "label": "a1",
                "video_id": "wear_clip",
                "frame_path": "video/wear_clip.mp4",
            },
            {"imu": "imu/cmu_clip.csv", "label": "a0,a2", "video_id": "cmu_clip", "frame_path": ""},
        ]
    }
    (rel / "cav_label" / "train_finetune" / "labels_1.json").write_text(json.dumps(doc))
    return rel


def write_replay_session(path: Path, seconds: float = 2.0, t0_ns: int = 5_000_000_000) -> Path:
    """Two jittered IMUs with device times and a 10 fps camera, from ``t0_ns``, as a session."""
    rng = np.random.default_rng(0)
    rate, fps = 50.0, 10.0
    with SessionWriter(
        path,
        imu={"left_arm": ImuSpec(rate_hz=rate), "right_leg": ImuSpec(rate_hz=rate)},
        camera=CameraSpec(width=64, height=48, fps=fps),
        t0_ns=t0_ns,
    ) as w:
        n = int(seconds * rate)
        for placement, jitter in (("left_arm", 1e6), ("right_leg", 3e6)):
            t = t0_ns + (np.arange(n) / rate * 1e9 + rng.uniform(0, jitter, n)).astype(np.int64)
            values = rng.normal(size=(n, 3)).astype(np.float32)
            w.add_imu_block(placement, t, values, np.arange(n) / rate + 100.0)
        for k in range(int(seconds * fps)):
            frame = np.full((48, 64, 3), (k * 12) % 256, np.uint8)
            w.add_frame(t0_ns + int(k / fps * 1e9), frame)
    return path
