"""The time-domain IMU variant (``imu_patch_*``, issue 18): it reads what the published input
throws away (the window's mean, i.e. the posture, and the signal's sign and phase), its
artifact states that input contract, and the runtime feeds it exactly what training fed it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.artifact import ArtifactError, ModelMeta, load_artifact, read_meta
from evimae_stream.imu_input import imu_model_input, time_input
from evimae_stream.model import create_model, create_pretrain_model, model_config
from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.sessions import ImuSpec, SessionWriter, open_session
from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO
from training.config import load_config
from training.evaluate_artifact import evaluate_sessions
from training.prepare import epoch_repeats
from training.train import run
from training.windows import cut_session, make_label_fn

RATE = 50.0
SMALL = "model.overrides={embed_dim: 16, heads: 1, depth: 1}"


def test_variant_shapes_and_it_reads_the_posture() -> None:
    torch.manual_seed(0)
    model = create_model("imu_patch_tiny", 5, embed_dim=16, heads=1, depth=1).eval()
    x = torch.randn(3, 12, 250) * 0.2
    assert model(x).shape == (3, 5)
    assert model(x[:, :, :243]).shape == (3, 5)  # a length that is not a whole number of patches
    tilted = x.clone()
    tilted[:, 0:3] += torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1)  # gravity on one slot's z
    # a mean-removed input (the published one) could not tell these apart
    assert not torch.allclose(model(x), model(tilted), atol=1e-4)
    with pytest.raises(ValueError, match="IMU only"):
        model(x, None, "multimodal")
    with pytest.raises(ValueError, match="no multimodal pretraining model"):
        create_pretrain_model("imu_patch_tiny")
    with pytest.raises(ValueError, match="unknown model config field"):
        model_config("imu_patch_tiny", 3, imu_embed_dim=8)
    with pytest.raises(ValueError, match="divide by heads"):
        model_config("imu_patch_tiny", 3, embed_dim=10, heads=4)


def test_time_input_is_the_window_channels_first() -> None:
    x = np.random.default_rng(0).normal(size=(250, 12)).astype(np.float32)
    t = imu_model_input(x, PreprocessConfig(imu_input="time"))
    assert t.shape == (12, 250) and torch.equal(t, torch.from_numpy(x.T.copy()))
    assert time_input(np.stack([x, x])).shape == (2, 12, 250)
    assert imu_model_input(x, PreprocessConfig()).shape == (12, 320, 128)  # the published one
    with pytest.raises(ValueError, match="imu_input"):
        PreprocessConfig(imu_input="wavelet")


def test_published_meta_is_unchanged_and_a_bad_contract_is_refused(tmp_path: Path) -> None:
    from evimae_stream.artifact import _meta_dict, save_artifact

    base = dict(
        variant="imu_patch_tiny", model_config=model_config("imu_patch_tiny", 2).to_dict(),
        classes=["a", "b"], imu_rate_hz=RATE, window_s=5.0, norm_mean=0.0, norm_std=1.0,
        num_frames=1, img_size=1, video_span_s=5.0, modes=["imu_only"],
    )  # fmt: skip
    doc = _meta_dict(ModelMeta(**base))
    assert "imu_input" not in doc and "imu_channels" not in doc  # the published description
    meta = ModelMeta(**base, imu_input="time", imu_channels=["ax", "ay", "az"])
    assert meta.preprocess.imu_input == "time"
    art = save_artifact(create_model("imu_patch_tiny", 2), meta, tmp_path / "art")
    assert read_meta(art)[0].imu_input == "time"
    doc = json.loads((art / "model.json").read_text())
    doc["imu_input"] = "wavelet"
    (art / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="imu_input"):
        read_meta(art)


def test_small_training_sets_are_visited_several_times_an_epoch() -> None:
    assert epoch_repeats(86, 1000) == 12 and epoch_repeats(1200, 1000) == 1
    assert epoch_repeats(86, 0) == 1 and epoch_repeats(0, 1000) == 1


def test_gyro_windows_rotate_with_the_frame_and_a_missing_gyro_is_named(tmp_path: Path) -> None:
    from evimae_stream.errors import InputError
    from training.augment import ImuAugment
    from training.windows import channel_columns

    rng = np.random.default_rng(0)
    slot = np.concatenate([motion("raise", 5.0, 1), rng.normal(0, 50, (250, 3))], axis=1)
    x = np.tile(slot, (1, 4)).astype(np.float32)  # (250, 24): one sensor in every slot
    filled = ("left_arm", "left_leg", "right_leg")
    out = ImuAugment(yaw_deg=90.0, tilt_deg=20.0)(x, filled, np.random.default_rng(1))
    assert out.shape == (250, 24) and not np.allclose(out, x, atol=1e-3)
    for k in (0, 3):  # a rotation keeps each vector's length, acceleration and gyroscope alike
        np.testing.assert_allclose(
            np.linalg.norm(out[:, 6 + k : 9 + k], axis=1),
            np.linalg.norm(slot[:, k : k + 3], axis=1),
            rtol=1e-4,
        )
    np.testing.assert_array_equal(out[:, :6], out[:, 6:12])  # filled slots refilled
    assert channel_columns(
        ("ax", "ay", "az", "gx", "gy", "gz"), ("ax", "ay", "az", "gx", "gy", "gz"), "s"
    ) == list(range(6))
    with pytest.raises(InputError, match="no gx, gy, gz channel"):
        channel_columns(
            ("ax", "ay", "az"), ("ax", "ay", "az", "gx", "gy", "gz"), "s: IMU right_arm"
        )


def test_gyro_auto_reads_the_gyroscope_only_when_every_session_has_one(tmp_path: Path) -> None:
    from evimae_stream.errors import InputError
    from training.channels import with_channels

    gyro = ("ax", "ay", "az", "gx", "gy", "gz")
    six = np.concatenate([motion("raise", 6.0, 0), np.zeros((300, 3))], axis=1)
    write_session(tmp_path / "g" / "a", [("raise", six)], gyro)
    write_session(tmp_path / "g" / "b", [("raise", six)], gyro)

    def recipe(folder: str, *sets: str):
        return load_config(
            REPO / "configs" / "train" / "small_real.yaml",
            [f"data.sessions={tmp_path / folder}", f"run_dir={tmp_path / 'run'}", *sets],
        )

    cfg = with_channels(recipe("g"))
    assert cfg.model.gyro == "always" and cfg.model.overrides["imu_channels"] == 24
    write_session(tmp_path / "g" / "c", [("raise", motion("raise", 6.0, 1))])  # no gyroscope
    cfg = with_channels(recipe("g"))
    assert cfg.model.gyro == "never" and cfg.model.overrides["imu_channels"] == 12
    with pytest.raises(InputError, match="reads acceleration only"):
        with_channels(recipe("g", "model.variant=evimae_tiny", "model.gyro=always"))
    assert with_channels(recipe("g", "model.variant=evimae_tiny")).model.overrides == {}


def write_session(
    path: Path, parts: list[tuple[str, np.ndarray]], channels: tuple[str, ...] = ("ax", "ay", "az")
) -> Path:
    """A right-wrist recording of (label, (N, C) samples) parts, back to back."""
    with SessionWriter(
        path, imu={"right_arm": ImuSpec(RATE, channels)}, t0_ns=10**9, wall_start="fixed"
    ) as w:
        start = 0.0
        for label, acc in parts:
            n = len(acc)
            t = 10**9 + np.round((start + np.arange(n) / RATE) * 1e9).astype(np.int64)
            w.add_imu_block("right_arm", t, acc.astype(np.float32))
            w.add_label(start, start + n / RATE, label)
            start += n / RATE
    return path


def motion(label: str, seconds: float, seed: int) -> np.ndarray:
    """Two movements that differ in posture (gravity on z or on x) and tempo."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    g = np.array([0.0, 0.0, 1.0]) if label == "raise" else np.array([1.0, 0.0, 0.0])
    f = 0.5 if label == "raise" else 1.2
    swing = 0.3 * np.sin(2 * np.pi * f * t)[:, None] * np.array([0.0, 1.0, 0.0])
    return g + swing + rng.normal(0.0, 0.02, (len(t), 3))


@pytest.mark.slow
def test_trained_variant_replays_through_the_cli_as_training_scores_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for k in range(2):
        for label in ("raise", "reach"):
            write_session(data / "train" / f"{label}{k}", [(label, motion(label, 20.0, k))])
    test = write_session(
        data / "test" / "both",
        [("raise", motion("raise", 15.0, 7)), ("reach", motion("reach", 15.0, 8))],
    )
    cfg = load_config(
        REPO / "configs" / "train" / "small_real.yaml",
        [
            f"run_dir={tmp_path / 'run'}", f"data.sessions={data / 'train'}", SMALL,
            f"data.sources=[{{kind: directory, path: {data / 'test'}, split: test}}]",
            "train.epochs=2", "train.min_windows_per_epoch=0",
            "train.max_steps_per_epoch=3", "train.num_threads=1", "train.batch_size=8",
        ],
    )  # fmt: skip
    out = run(cfg)
    art = Path(out["artifact"])
    _, meta = load_artifact(art)
    assert (meta.imu_input, meta.imu_channels) == ("time", ["ax", "ay", "az"])
    jsonl = tmp_path / "replay.jsonl"
    proc = cli("--replay", test, "--model", art, "--speed", "max", "--backend", "eager",
               "--stride", 1.0, "--jsonl", jsonl, "--quiet", "--eval", "--eval-out",
               tmp_path / "ev")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    preds = [e for e in events(jsonl) if e["type"] == "prediction" and e["label"] is not None]
    assert len(preds) >= 20 and {p["mode"] for p in preds} == {"imu_only"}
    ends = [p["t_ref_s"] for p in preds]
    # the same windows cut and preprocessed by training's code give the same probabilities
    model, meta = load_artifact(art)
    with open_session(test) as s:
        items, _ = cut_session(
            s, meta.geometry, 1.0, make_label_fn({}, None), fill_missing=True, ends=ends
        )
    assert [round(it.t_ref, 6) for it in items] == [round(t, 6) for t in ends]
    x = imu_model_input(np.stack([it.imu for it in items]), meta.preprocess)
    with torch.no_grad():
        probs = torch.softmax(model.eval()(x).double(), dim=1).numpy()
    for p, row in zip(preds, probs, strict=True):
        assert p["label"] == meta.classes[int(row.argmax())]
        assert p["topk"][0]["score"] == pytest.approx(float(row.max()), abs=2e-5)
    # and evaluate_artifact.py scores exactly the runtime's (truth, prediction) pairs
    scored = [p for p in preds if p["truth"] is not None]
    ours = evaluate_sessions(art, [test], 1.0, ends=[[p["t_ref_s"] for p in scored]])["imu_only"]
    confusion = [[0] * len(meta.classes) for _ in meta.classes]
    for p in scored:
        confusion[meta.classes.index(p["truth"])][meta.classes.index(p["label"])] += 1
    assert ours["windows"] == len(scored) and ours["confusion"] == confusion


@pytest.mark.parametrize("sent", [3, 6])
def test_imus_without_the_gyro_a_model_reads_are_missing_not_an_error(sent: int) -> None:
    """A rig of acceleration-only IMUs under a gyro model: each window plans around them like
    silent streams (no exception per window) and says why; with the gyroscope they are read."""
    from evimae_stream.buffer import BufferConfig, StreamBuffer
    from evimae_stream.clock import VirtualClock
    from evimae_stream.runtime.inputs import ModelSpec, build_inputs, usable_imus
    from evimae_stream.runtime.policy import plan_window
    from evimae_stream.time_map import ArrivalTimeMap
    from evimae_stream.types import ACC_AXES, GYRO_AXES, PLACEMENTS
    from evimae_stream.window import WindowGeometry

    geometry = WindowGeometry(2.0, RATE, 4, 2.0)
    t = 10 * 10**9 + np.arange(int(4 * RATE)) * int(1e9 / RATE)
    buf = StreamBuffer(
        BufferConfig(imu_channels=sent, imu_rate_hz=RATE, camera=False),
        clock=VirtualClock(int(t[-1])),
        time_maps={p: ArrivalTimeMap() for p in PLACEMENTS},
    )
    for p in PLACEMENTS:
        ring = buf.imu_sink(p)
        for ti in t.tolist():
            ring.push(ti, np.full(sent, 0.5, np.float32))
    window = buf.assemble_window(geometry, int(t[-1]))
    spec = ModelSpec(
        ("raise", "reach"), ("imu_only",), geometry, PreprocessConfig(imu_input="time"),
        ACC_AXES + GYRO_AXES,
    )  # fmt: skip
    present, missing = usable_imus(window, spec)
    plan = plan_window(present, False, spec.modes, missing)
    if sent == 3:
        assert not any(present.values()) and plan.mode is None
        assert "sends 3 channels, the model reads ax,ay,az,gx,gy,gz" in plan.reason
        assert all("sends 3 channels" in missing[p] for p in PLACEMENTS)
    else:
        assert all(present.values()) and plan.mode == "imu_only"
        assert not set(missing) & set(PLACEMENTS)
        inputs = build_inputs(window, None, plan, spec)
        assert tuple(inputs.imu.shape) == (1, 4 * 6, geometry.samples)
