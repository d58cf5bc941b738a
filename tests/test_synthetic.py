"""The synthetic wearer in memory: determinism, physics, timing, video/motion agreement."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evimae_stream.errors import InputError
from evimae_stream.synthetic import G0, IDLE, SKIN_RGB, SyntheticWearer, WearerConfig
from evimae_stream.types import PLACEMENTS


@pytest.fixture(scope="module")
def wearer() -> SyntheticWearer:
    return SyntheticWearer(WearerConfig(seed=7, actions=8, width=160, height=120))


def _segments(w: SyntheticWearer, label: str) -> list[tuple[float, float]]:
    return [(s, e) for s, e, lab in w.script if lab == label]


def _middle(w: SyntheticWearer, label: str, margin: float = 1.0) -> tuple[float, float]:
    s, e = max(_segments(w, label), key=lambda se: se[1] - se[0])
    return s + margin, e - margin


# -- script --------------------------------------------------------------------------------------
def test_script_has_distinct_actions_separated_by_idle(wearer):
    labels = [lab for _, _, lab in wearer.script]
    actions = [lab for lab in labels if lab != IDLE]
    assert len(actions) == 8 and len(set(actions)) >= 6
    assert labels[0] == IDLE and labels[-1] == IDLE
    assert all(labels[i] == IDLE for i in range(0, len(labels), 2))  # idle between actions
    ends = np.array([(s, e) for s, e, _ in wearer.script])
    assert ends[0, 0] == 0.0 and np.allclose(ends[1:, 0], ends[:-1, 1])  # contiguous
    assert (ends[:, 1] - ends[:, 0] > 2 * wearer.cfg.transition_s).all()
    assert set(labels) <= set(wearer.classes) and wearer.classes[0] == IDLE


def test_minutes_fix_the_session_length():
    w = SyntheticWearer(seed=3, actions=6, minutes=1.5)
    assert w.script[-1][1] == pytest.approx(90.0)
    assert len([lab for _, _, lab in w.script if lab != IDLE]) == 6


@settings(max_examples=40, deadline=None)
@given(actions=st.integers(1, 30), extra=st.floats(0.0, 3.0), seed=st.integers(0, 2**31))
def test_any_valid_length_gives_a_sound_script(actions, extra, seed):
    minutes = actions * 5.0 / 60.0 * (1.0 + extra)  # from the shortest allowed upwards
    w = SyntheticWearer(seed=seed, actions=actions, minutes=minutes)
    spans = np.array([(s, e) for s, e, _ in w.script])
    assert spans[-1, 1] == pytest.approx(minutes * 60.0)
    assert (np.diff(spans, axis=1) >= 2 * w.cfg.transition_s - 1e-9).all()
    assert sum(lab != IDLE for _, _, lab in w.script) == actions


@pytest.mark.parametrize(
    "kw",
    [
        {"actions": 0},
        {"minutes": 0.0},
        {"minutes": 0.1, "actions": 9},
        {"action_names": ("flying",)},
        {"imu_rate_hz": 0.0},
        {"drop_fraction": 0.9},
        {"max_jitter_s": 0.05, "imu_rate_hz": 100.0},
        {"width": 4},
    ],
)
def test_bad_config_is_one_line_input_error(kw):
    with pytest.raises(InputError) as exc:
        WearerConfig(**kw)
    msg = str(exc.value)
    assert "\n" not in msg and next(iter(kw)) in msg


# -- determinism ---------------------------------------------------------------------------------
def test_same_seed_same_data_other_seed_different():
    a, b, c = (SyntheticWearer(seed=s, width=64, height=48) for s in (1, 1, 2))
    assert a.script == b.script and a.script != c.script
    for p in PLACEMENTS:
        sa, sb, sc = (w.imu_samples(p, 0.0, 20.0) for w in (a, b, c))
        for x, y in zip(sa, sb, strict=True):
            np.testing.assert_array_equal(x, y)
        assert len(sa.values) != len(sc.values) or not np.array_equal(sa.values, sc.values)
    fa, fb, fc = (w.render_frame(5.0) for w in (a, b, c))
    np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(fa, fc)


def test_chunked_samples_equal_one_shot(wearer):
    rng = np.random.default_rng(0)
    edges = np.sort(np.concatenate([[0.0, 40.0], rng.uniform(0.0, 40.0, 25)]))
    for p in PLACEMENTS:
        whole = wearer.imu_samples(p, 0.0, 40.0)
        parts = [wearer.imu_samples(p, a, b) for a, b in itertools.pairwise(edges)]
        for i, field in enumerate(whole):
            np.testing.assert_array_equal(field, np.concatenate([part[i] for part in parts]))


@settings(max_examples=15, deadline=None)
@given(
    cut=st.floats(0.001, 9.999),
    placement=st.sampled_from(PLACEMENTS),
    start=st.floats(0.0, 30.0),
)
def test_any_split_point_gives_the_same_samples(wearer, cut, placement, start):
    a, b = start, start + 10.0
    whole = wearer.imu_samples(placement, a, b)
    left, right = (
        wearer.imu_samples(placement, a, a + cut),
        wearer.imu_samples(placement, a + cut, b),
    )
    for i, field in enumerate(whole):
        np.testing.assert_array_equal(field, np.concatenate([left[i], right[i]]))


# -- physics -------------------------------------------------------------------------------------
def test_at_rest_the_accelerometer_reads_one_g(wearer):
    a, b = _middle(wearer, IDLE, margin=0.6)
    for p in PLACEMENTS:
        acc = wearer.imu_samples(p, a, b).values[:, :3].astype(np.float64)
        mag = np.linalg.norm(acc, axis=1)
        assert abs(np.median(mag) - 1.0) < 0.08, p  # gravity, within bias and noise
        assert mag.std() < 0.06, p


@pytest.mark.parametrize("action", ["jogging", "jumping-jacks"])
def test_vigorous_action_varies_far_more_than_idle(wearer, action):
    w = SyntheticWearer(seed=7, actions=9, action_names=(action, "waving"))
    ia, ib = _middle(w, IDLE, margin=0.6)
    va, vb = _middle(w, action)
    for p in PLACEMENTS:
        idle = w.imu_samples(p, ia, ib).values[:, :3]
        busy = w.imu_samples(p, va, vb).values[:, :3]
        assert busy.var(0).sum() > 20 * idle.var(0).sum(), p


def test_acceleration_is_second_derivative_of_position_plus_gravity(wearer):
    t = np.linspace(0.5, wearer.duration_s - 0.5, 3000)  # crosses every transition
    h = 1e-3
    for p in PLACEMENTS:
        pos, R = wearer.pose(p, t)
        plus, R_plus = wearer.pose(p, t + h)
        minus, R_minus = wearer.pose(p, t - h)
        acc_world = (plus - 2 * pos + minus) / h**2
        expected = np.einsum("nji,nj->ni", R, acc_world / G0 + [0.0, 0.0, 1.0])
        true = wearer.true_imu(p, t)
        assert np.abs(true[:, :3] - expected).max() < 0.01, p
        dR = np.swapaxes(R, 1, 2) @ (R_plus - R_minus) / (2 * h)
        omega = np.degrees(np.stack([dR[:, 2, 1], dR[:, 0, 2], dR[:, 1, 0]], -1))
        assert np.abs(true[:, 3:] - omega).max() < 0.5, p
        assert np.abs(true[:, :3]).max() > 1.2  # the motion is not trivial


def test_samples_are_true_reading_plus_small_noise_and_bias(wearer):
    s = wearer.imu_samples("right_arm", 10.0, 30.0)
    info = wearer.sensor_info("right_arm")
    t_true = (s.t_dev_s - info["dev_offset_s"]) / (1 + info["drift_ppm"] * 1e-6)
    err = s.values - wearer.true_imu("right_arm", t_true)
    assert np.abs(err[:, :3].mean(0)).max() <= wearer.cfg.bias_g + 0.005  # bias
    assert 0.5 * wearer.cfg.noise_g < err[:, :3].std(0).min() < 2 * wearer.cfg.noise_g


# -- timing --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timed() -> SyntheticWearer:
    return SyntheticWearer(seed=11, actions=10, imu_rate_hz=(50.0, 60.0, 100.0, 75.0))


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    A = np.stack([x - x.mean(), np.ones_like(x)], 1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(coef[0]), y - A @ coef


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_rates_jitter_drops_and_drift(timed, placement):
    cfg, info = timed.cfg, timed.sensor_info(placement)
    rate = info["rate_hz"]
    s = timed.imu_samples(placement, 0.0, timed.duration_s + 1.0)
    assert np.all(np.diff(s.t_host_s) > 0)
    k = np.round((s.t_dev_s - info["dev_offset_s"]) * rate).astype(np.int64)
    period, resid = _fit(k.astype(float), s.t_host_s)
    assert abs(1.0 / period / rate - 1.0) < 0.01  # effective rate within 1 %
    assert resid.std() > 0.0005  # jitter present ...
    assert np.ptp(resid) < cfg.max_jitter_s + 0.002  # ... and bounded
    dropped = 1.0 - len(k) / (k[-1] + 1)
    assert 0.0015 < dropped < 0.012  # configured 0.005 over ~5000-11000 samples
    slope, _ = _fit(s.t_host_s, s.t_dev_s)  # device clock vs host clock
    assert abs(info["drift_ppm"]) <= cfg.drift_ppm
    assert (slope - 1.0) * 1e6 == pytest.approx(info["drift_ppm"], abs=5.0)


def test_drift_and_drop_follow_the_config():
    w = SyntheticWearer(seed=5, actions=6, drift_ppm=0.0, drop_fraction=0.05, imu_rate_hz=100.0)
    s = w.imu_samples("left_leg", 0.0, w.duration_s + 1.0)
    k = np.round((s.t_dev_s - w.sensor_info("left_leg")["dev_offset_s"]) * 100.0)
    assert 0.04 < 1.0 - len(k) / (k[-1] + 1) < 0.06
    slope, _ = _fit(s.t_host_s, s.t_dev_s)
    assert abs(slope - 1.0) < 5e-6


def test_frames_arrive_at_the_camera_rate(wearer):
    ft = wearer.frame_times(0.0, 30.0)
    assert np.array_equal(ft.index, np.arange(len(ft.index)))
    assert np.median(np.diff(ft.t_host_s)) == pytest.approx(1 / 30.0, rel=0.01)
    assert np.all(ft.t_host_s > ft.t_s) and np.all(np.diff(ft.t_host_s) > 0)


# -- video agrees with motion --------------------------------------------------------------------
def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    (dx, _), _ = cv2.phaseCorrelate(_gray(a), _gray(b))
    return dx


def test_scene_moves_against_the_head_yaw(wearer):
    frame = wearer.render_frame(3.0)
    sign = np.sign(_shift(frame, np.roll(frame, 3, axis=1)))  # content moved right → sign
    a, b = _middle(wearer, IDLE, margin=0.6)
    t = np.linspace(a, b, 40)
    dt = 1 / 30.0
    _, R0 = wearer.pose("head", t)
    _, R1 = wearer.pose("head", t + dt)
    yaw_rate = (np.arctan2(R1[:, 1, 0], R1[:, 0, 0]) - np.arctan2(R0[:, 1, 0], R0[:, 0, 0])) / dt
    turning = np.abs(yaw_rate) > 0.05
    assert turning.sum() >= 5
    agree = [
        np.sign(_shift(wearer.render_frame(ti), wearer.render_frame(ti + dt))) == sign * np.sign(r)
        for ti, r in zip(t[turning], yaw_rate[turning], strict=True)
    ]  # turning left (yaw up) moves the scene right in the image
    assert np.mean(agree) >= 0.8


def _skin_fraction(img: np.ndarray) -> float:
    return float((np.abs(img.astype(int) - SKIN_RGB).max(-1) <= 3).mean())


def test_hands_in_view_during_hand_actions_only():
    w = SyntheticWearer(
        seed=4, actions=5, width=160, height=120,
        action_names=("stirring", "chopping", "waving", "walking", "jogging"),
    )  # fmt: skip
    for label in ("stirring", "chopping", "waving", "walking", "jogging", IDLE):
        a, b = _middle(w, label, margin=0.5)
        frac = np.mean([_skin_fraction(w.render_frame(t)) for t in np.linspace(a, b, 6)])
        if label in ("stirring", "chopping", "waving"):
            assert frac > 0.004, label
        else:
            assert frac < 0.001, label


def test_hand_is_drawn_where_the_wrist_projects():
    w = SyntheticWearer(seed=2, actions=1, action_names=("stirring",), width=160, height=120)
    a, b = _middle(w, "stirring")
    for t in np.linspace(a, b, 5):
        img = w.render_frame(t)
        cam_pos, R_head = w.pose("head", t)
        wrist, R_arm = w.pose("right_arm", t)
        hand = wrist + 0.07 * R_arm[:, :, 0]
        cam = cam_pos[0] + R_head[0] @ [0.1, 0.0, 0.06]
        uv, depth = w.camera.project(hand, cam, R_head[0])
        (u, v), _ = uv[0], depth[0]
        assert depth[0] > 0.1
        ys, xs = np.nonzero(np.abs(img.astype(int) - SKIN_RGB).max(-1) <= 3)
        near = (np.abs(xs - u) < 12) & (np.abs(ys - v) < 12)
        assert near.sum() > 20, t


# -- separability (protects the downstream training target) --------------------------------------
def _window_features(w: SyntheticWearer, win: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each limb's acceleration axes over 2 s windows inside each segment."""
    data = {p: w.imu_samples(p, 0.0, w.duration_s + 1.0) for p in PLACEMENTS}
    feats, labels = [], []
    for s, e, label in w.script:
        t = s + 0.5
        while t + win <= e - 0.5:
            row = []
            for p in PLACEMENTS:
                d = data[p]
                v = d.values[(d.t_host_s >= t) & (d.t_host_s < t + win), :3]
                row += [*v.mean(0), *v.std(0)]
            feats.append(row)
            labels.append(label)
            t += 1.0
    return np.array(feats), np.array(labels)


@pytest.mark.parametrize(("train_seed", "test_seed"), [(0, 1), (2, 3)])
def test_nearest_centroid_transfers_across_seeds(train_seed, test_seed):
    Xa, ya = _window_features(SyntheticWearer(seed=train_seed, actions=8))
    Xb, yb = _window_features(SyntheticWearer(seed=test_seed, actions=8))
    classes = sorted(set(ya))
    assert len(classes) == 9  # every action and idle
    centroids = np.stack([Xa[ya == c].mean(0) for c in classes])
    scale = Xa.std(0) + 1e-6
    dist = (((Xb[:, None] - centroids[None]) / scale) ** 2).sum(-1)
    pred = np.array(classes)[dist.argmin(1)]
    assert (pred == yb).mean() > 0.8
