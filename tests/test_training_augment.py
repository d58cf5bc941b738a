"""The wearable IMU augmentations' invariants: a sensor-frame rotation keeps every sample's
norm and the gravity direction's yaw axis, a slot filled from another sensor stays that sensor's
copy, sensor dropout refills as the runtime fills, and a training dataset draws them from
(seed, epoch, index) only."""

from __future__ import annotations

import numpy as np

from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.runtime.policy import fill_slots
from evimae_stream.types import PLACEMENTS
from training.augment import ImuAugment, frame_rotation, rotation, warp
from training.data import WindowDataset
from training.windows import FrameStore, WindowItem


def wrist(n: int = 250, seed: int = 0) -> np.ndarray:
    """(n, 3) a wrist sensor: gravity along a tilted axis plus motion, in g."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0
    g = np.array([0.3, -0.5, 0.81])
    return g + 0.4 * np.stack([np.sin(3 * t), np.cos(2 * t), rng.normal(0, 0.05, n)], axis=1)


def window(slots: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[str, ...]]:
    """The (L, 12) window of recorded ``slots``, the others filled as the runtime fills."""
    fill = fill_slots(slots, True)
    assert fill is not None
    filled = tuple(p for p in PLACEMENTS if fill[p] != p)
    return np.concatenate([slots[fill[p]] for p in PLACEMENTS], axis=1), filled


def test_rotation_keeps_every_norm_and_turns_about_gravity() -> None:
    x = wrist()
    r = frame_rotation(x, 180.0, 0.0, np.random.default_rng(3))
    y = x @ r.T
    assert np.allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1))
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    g = x.mean(0)
    assert np.allclose(r @ g, g)  # a yaw leaves the gravity direction where it is
    tilted = frame_rotation(x, 0.0, 10.0, np.random.default_rng(4)) @ g
    angle = np.degrees(np.arccos(tilted @ g / (g @ g)))
    assert 0 < angle <= 10.0 + 1e-9
    assert np.allclose(rotation(np.array([0, 0, 1.0]), np.pi / 2) @ [1, 0, 0], [0, 1, 0])


def test_warp_is_the_identity_at_scale_one_and_shifts_by_samples() -> None:
    x = wrist()
    assert np.allclose(warp(x, 1.0, 0.0), x)
    assert np.allclose(warp(x, 1.0, 5.0)[:-5], x[5:])


def test_filled_slots_stay_copies_of_their_sensor() -> None:
    imu, filled = window({"left_arm": wrist(seed=1), "right_leg": wrist(seed=2)})
    aug = ImuAugment(yaw_deg=180, tilt_deg=10, gain=0.2, time_warp=0.1, shift_s=0.5)
    out = aug(imu, filled, np.random.default_rng(0))
    cols = {p: out[:, 3 * i : 3 * i + 3] for i, p in enumerate(PLACEMENTS)}
    assert np.array_equal(cols["right_arm"], cols["left_arm"])  # right arm filled from left
    assert np.array_equal(cols["left_leg"], cols["right_leg"])
    assert not np.allclose(cols["left_arm"], imu[:, :3])
    # each sensor its own rotation: the two recorded sensors do not turn alike
    assert not np.allclose(cols["left_arm"] - imu[:, :3], cols["right_leg"] - imu[:, 9:])


def test_dropout_refills_the_slot_as_the_runtime_does() -> None:
    imu, filled = window({"left_arm": wrist(seed=1), "right_leg": wrist(seed=2)})
    out = ImuAugment(dropout=0.999)(imu, filled, np.random.default_rng(1))
    cols = [out[:, 3 * i : 3 * i + 3] for i in range(4)]
    # one sensor left: the runtime's fill puts it on all four slots
    assert all(np.array_equal(c, cols[0]) for c in cols)
    assert any(np.allclose(cols[0], imu[:, 3 * i : 3 * i + 3]) for i in range(4))
    single, filled1 = window({"right_arm": wrist(seed=5)})
    assert np.allclose(
        ImuAugment(dropout=0.999)(single, filled1, np.random.default_rng(2)), single
    )  # fmt: skip  (the only sensor is never dropped)


def test_dataset_draws_augmentations_per_seed_epoch_and_index() -> None:
    imu, filled = window({"left_arm": wrist(seed=1)})
    items = [WindowItem(imu.astype(np.float32), None, ("a",), "x", 5.0, filled)]
    pcfg = PreprocessConfig(num_frames=2, img_size=32)
    aug = ImuAugment(yaw_deg=90, gain=0.1)
    ds = WindowDataset(
        items,
        FrameStore(32),
        ["a"],
        pcfg,
        need_imu=True,
        need_video=False,
        train=True,
        imu_augment=aug,
        seed=7,
    )
    first = ds[0]["imu"]
    assert np.array_equal(first, ds[0]["imu"])
    ds.set_epoch(1)
    assert not np.array_equal(first, ds[0]["imu"])
    plain = WindowDataset(
        items, FrameStore(32), ["a"], pcfg, need_imu=True, need_video=False, imu_augment=aug
    )  # fmt: skip  (evaluation: never augmented)
    plain.warm_cache()
    assert plain.imu_augment is None and plain._spec[0] is not None
