"""Model artifacts: round trip, and every way a model directory can be broken."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evimae_stream.artifact import ModelMeta, load_artifact, model_hash, save_artifact
from evimae_stream.errors import ArtifactError
from evimae_stream.model import create_model

CLASSES = ["idle", "walk", "wave"]


def _meta(model) -> ModelMeta:
    cfg = model.cfg
    return ModelMeta(
        variant="evimae_tiny",
        model_config=cfg.to_dict(),
        classes=list(CLASSES),
        imu_rate_hz=50.0,
        window_s=5.0,
        norm_mean=-51.17,
        norm_std=26.19,
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        video_span_s=2.0,
    )


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("evimae_tiny", len(CLASSES)).eval()


@pytest.fixture()
def artifact(tmp_path: Path, tiny) -> Path:
    return save_artifact(tiny, _meta(tiny), tmp_path / "art")


def _inputs(model):
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    imu = torch.randn(2, 12, 320, 128, generator=g)
    video = torch.randn(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g)
    return imu, video


def test_round_trip_gives_identical_outputs(artifact: Path, tiny) -> None:
    loaded, meta = load_artifact(artifact)
    assert meta.classes == CLASSES and meta.window_samples == 250
    imu, video = _inputs(tiny)
    with torch.no_grad():
        for mode in ("multimodal", "imu_only", "video_only"):
            a = tiny(imu, video, mode)
            b = loaded(imu, video, mode)
            assert torch.equal(a, b), mode


def test_model_hash_changes_with_weights(tmp_path: Path, tiny) -> None:
    a = save_artifact(tiny, _meta(tiny), tmp_path / "a")
    other = create_model("evimae_tiny", len(CLASSES))
    b = save_artifact(other, _meta(other), tmp_path / "b")
    assert model_hash(a) == model_hash(a)
    assert model_hash(a) != model_hash(b)


def _one_line_error(art: Path, file: str, *needles: str) -> str:
    """Load ``art``; the ArtifactError must be one line naming ``art/file`` and ``needles``."""
    with pytest.raises(ArtifactError) as e:
        load_artifact(art)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert str(art / file) in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def _edit_json(art: Path, fn) -> None:
    doc = json.loads((art / "model.json").read_text())
    fn(doc)
    (art / "model.json").write_text(json.dumps(doc))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as e:
        load_artifact(tmp_path / "nope")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "nope") in msg and "does not exist" in msg


def test_missing_json(artifact: Path) -> None:
    (artifact / "model.json").unlink()
    _one_line_error(artifact, "model.json", "missing")


def test_corrupt_json(artifact: Path) -> None:
    (artifact / "model.json").write_text('{"format": "evimae-stream-model", ')
    _one_line_error(artifact, "model.json", "not valid JSON")


@pytest.mark.parametrize("version", [99, "1", True, None])
def test_unsupported_format_version(artifact: Path, version) -> None:
    _edit_json(artifact, lambda doc: doc.update(format_version=version))
    _one_line_error(artifact, "model.json", f"format_version {version!r}")


def test_missing_weights(artifact: Path) -> None:
    (artifact / "model.safetensors").unlink()
    _one_line_error(artifact, "model.safetensors", "missing")


def test_corrupt_weights_caught_by_checksum(artifact: Path) -> None:
    path = artifact / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    _one_line_error(artifact, "model.safetensors", "checksum")


def test_truncated_weights_without_checksum(artifact: Path) -> None:
    path = artifact / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    _edit_json(artifact, lambda doc: doc.pop("weights_sha256"))
    _one_line_error(artifact, "model.safetensors", "unreadable safetensors")


def test_weights_of_another_shape(tmp_path: Path, tiny) -> None:
    art = save_artifact(tiny, _meta(tiny), tmp_path / "art")
    _edit_json(art, lambda doc: doc.update(classes=[*CLASSES, "extra"]))
    msg = _one_line_error(art, "model.safetensors", "shape mismatch")
    assert re.search(r"shape mismatch.*mlp_head", msg)


def test_unknown_variant(artifact: Path) -> None:
    _edit_json(artifact, lambda doc: doc.update(variant="evimae_huge"))
    _one_line_error(artifact, "model.json", "variant 'evimae_huge'")


def test_model_config_the_variant_rejects(artifact: Path) -> None:
    _edit_json(artifact, lambda doc: doc["model_config"].update(imu_depth="deep"))
    _one_line_error(artifact, "model.json", "model_config")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("model_config", None, "must be an object (the variant's config), got null"),
        ("model_config", [1, 2], "must be an object"),
        ("classes", "abc", 'must be a list of non-empty class-name strings, got a string "abc"'),
        ("classes", ["idle", 2, "wave"], "got a list"),
        ("classes", ["idle", "", "wave"], "non-empty class-name strings"),
        ("classes", [], "must not be empty"),
        ("variant", 7, "must be a non-empty string"),
        ("variant", "", "must be a non-empty string"),
        ("imu_rate_hz", "50", 'must be a finite number, got a string "50"'),
        ("imu_rate_hz", True, "must be a finite number, got a boolean true"),
        ("imu_rate_hz", -50.0, "must be positive"),
        ("norm_mean", float("nan"), "must be a finite number, got a number NaN"),
        ("norm_std", 0, "must be positive"),
        ("window_s", None, "must be a finite number, got null"),
        ("video_span_s", [2.0], "must be a finite number"),
        ("num_frames", 8.5, "must be an integer, got a number 8.5"),
        ("num_frames", 0, "must be at least 1"),
        ("img_size", "112", "must be an integer"),
        ("modes", "imu_only", "must be a list of mode names"),
        ("modes", ["imu_only", "fast"], "must be a non-empty subset"),
        ("modes", [], "must be a non-empty subset"),
        ("imu_units", 9.81, "must be a string"),
        ("training", [], "must be an object"),
        ("metrics", "0.9", "must be an object"),
        ("weights_sha256", 12, "must be a 64-digit hex string"),
    ],
)
def test_wrong_field_is_named_with_what_is_wrong(artifact: Path, name, value, words) -> None:
    _edit_json(artifact, lambda doc: doc.update({name: value}))
    msg = _one_line_error(artifact, "model.json", f"field {name!r}", words)
    assert "missing" not in msg


@pytest.mark.parametrize("name", sorted(ModelMeta.__dataclass_fields__))
def test_every_field_is_type_checked(artifact: Path, name) -> None:
    """Every ModelMeta field, given a JSON value of the wrong type, is named in one line."""
    wrong = "abc" if name in ("model_config", "training", "metrics", "interval") else {"bad": True}
    _edit_json(artifact, lambda doc: doc.update({name: wrong}))
    _one_line_error(artifact, "model.json", f"field {name!r} must be")


@pytest.mark.parametrize("name", ["variant", "model_config", "classes", "norm_std", "img_size"])
def test_missing_field_is_named(artifact: Path, name) -> None:
    _edit_json(artifact, lambda doc: doc.pop(name))
    _one_line_error(artifact, "model.json", f"field {name!r} is missing")


def test_optional_fields_may_be_absent(artifact: Path, tiny) -> None:
    _edit_json(artifact, lambda doc: [doc.pop(k) for k in ("modes", "training", "metrics")])
    _, meta = load_artifact(artifact)
    assert meta.modes == ["multimodal", "imu_only", "video_only"] and meta.training == {}


def test_cli_names_a_broken_model_json_in_one_line(artifact: Path, tmp_path: Path) -> None:
    """What used to be an AttributeError traceback in the CLI is one line naming the field."""
    from evimae_stream.sessions import ImuSpec, SessionWriter

    with SessionWriter(tmp_path / "session", imu={"left_arm": ImuSpec(50.0)}) as w:
        for i in range(5):
            w.add_imu("left_arm", w.t0_ns + i * 20_000_000, [0.0, 0.0, 1.0])
    _edit_json(artifact, lambda doc: doc.update(model_config=None))
    proc = _cli("--replay", str(tmp_path / "session"), "--model", str(artifact))
    _assert_one_line_error(proc, str(artifact / "model.json"), "model_config")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "evimae_stream.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_convert_rejects_missing_checkpoint(tmp_path: Path) -> None:
    proc = _cli(
        "convert",
        "--official",
        str(tmp_path / "x.pth"),
        "--dataset",
        "wear",
        "--out",
        str(tmp_path / "out"),
    )
    _assert_one_line_error(proc, "x.pth")


def test_convert_cmummac_needs_labels(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.pth"
    ckpt.write_bytes(b"")
    proc = _cli(
        "convert", "--official", str(ckpt), "--dataset", "cmummac", "--out", str(tmp_path / "out")
    )
    _assert_one_line_error(proc, "--labels")


def test_convert_rejects_bad_label_csv(tmp_path: Path) -> None:
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text("index,mid,display_name\n0,/m/a,stir\nx,/m/b,cut\n")
    proc = _cli(
        "convert",
        "--official",
        str(tmp_path / "c.pth"),
        "--dataset",
        "cmummac",
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "out"),
    )
    _assert_one_line_error(proc, "class_labels_indices.csv", "row 3")


def _fake_official_checkpoint(path: Path, num_classes: int, seed: int):
    """A random evimae_small saved the way the published checkpoints are (a pickled state dict
    of an nn.DataParallel: every key prefixed ``module.``); returns (the model, the path)."""
    torch.manual_seed(seed)
    ref = create_model("evimae_small", num_classes).eval()
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, path)
    return ref, path


@pytest.mark.slow
def test_convert_official_checkpoint_end_to_end(tmp_path: Path) -> None:
    """A published-layout checkpoint (module. prefix, pickle) converts and predicts identically."""
    ref, ckpt = _fake_official_checkpoint(tmp_path / "cmummac_finetuned.pth", 32, seed=3)
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text(
        "index,mid,display_name\n" + "".join(f"{i},/m/{i:02d},step {i}\n" for i in range(32))
    )
    out = tmp_path / "art"
    proc = _cli(
        "convert",
        "--official",
        str(ckpt),
        "--dataset",
        "cmummac",
        "--labels",
        str(labels),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    model, meta = load_artifact(out)
    assert meta.classes[5] == "step 5" and meta.window_samples == 150
    assert meta.norm_mean == pytest.approx(-70.84)
    g = torch.Generator().manual_seed(0)
    imu = torch.randn(1, 12, 320, 128, generator=g)
    with torch.no_grad():
        assert torch.equal(ref(imu, None, "imu_only"), model(imu, None, "imu_only"))
    again = _cli(
        "convert",
        "--official",
        str(ckpt),
        "--dataset",
        "cmummac",
        "--labels",
        str(labels),
        "--out",
        str(out),
    )
    _assert_one_line_error(again, "--force")


#: The 18 WEAR classes in id order, as DESIGN §5 lists them (written out here, not imported, so
#: the conversion is checked against the published list rather than against itself).
WEAR_CLASS_NAMES = [
    "jogging",
    "jogging (rotating arms)",
    "jogging (skipping)",
    "jogging (sidesteps)",
    "jogging (butt-kicks)",
    "stretching (triceps)",
    "stretching (lunging)",
    "stretching (shoulders)",
    "stretching (hamstrings)",
    "stretching (lumbar rotation)",
    "push-ups",
    "push-ups (complex)",
    "sit-ups",
    "sit-ups (complex)",
    "burpees",
    "lunges",
    "lunges (complex)",
    "bench-dips",
]


@pytest.mark.slow
def test_convert_official_wear_checkpoint_end_to_end(tmp_path: Path) -> None:
    """A published-layout WEAR checkpoint (18 classes) converts without --labels into an artifact
    with WEAR's class names in id order, its 50 Hz / 5 s window and normalisation, and loads to
    the same outputs."""
    ref, ckpt = _fake_official_checkpoint(tmp_path / "wear_finetuned.pth", 18, seed=4)
    out = tmp_path / "art"
    proc = _cli("convert", "--official", str(ckpt), "--dataset", "wear", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "18 classes" in proc.stdout and "wear" in proc.stdout
    model, meta = load_artifact(out)
    assert meta.classes == WEAR_CLASS_NAMES
    assert meta.variant == "evimae_small" and meta.imu_rate_hz == 50.0
    assert meta.window_s == pytest.approx(5.0) and meta.window_samples == 250
    assert (meta.norm_mean, meta.norm_std) == (pytest.approx(-51.17), pytest.approx(26.19))
    assert meta.training["dataset"] == "wear" and meta.training["checkpoint"] == ckpt.name
    g = torch.Generator().manual_seed(0)
    imu = torch.randn(1, 12, 320, 128, generator=g)
    with torch.no_grad():
        got = model(imu, None, "imu_only")
        assert got.shape == (1, 18)
        assert torch.equal(ref(imu, None, "imu_only"), got)


# -- issue 16, items 17 and 22: artifacts that contradict themselves ------------------------------


@pytest.mark.parametrize(("name", "value"), [("img_size", 96), ("num_frames", 4)])
def test_top_level_shape_disagreeing_with_model_config_is_refused_at_load(
    artifact: Path, name: str, value: int
) -> None:
    _edit_json(artifact, lambda doc: doc.update({name: value}))
    _one_line_error(artifact, "model.json", f"field {name!r} is {value}", f"model_config.{name}")


def test_duplicate_class_names_in_model_json_are_refused(artifact: Path) -> None:
    _edit_json(artifact, lambda doc: doc.update(classes=["idle", "walk", "idle"]))
    _one_line_error(artifact, "model.json", "'classes'", "'idle' twice")


# -- issue 16, item 10: what convert says about a file that is not a checkpoint, file modes ----


def test_convert_on_a_non_checkpoint_says_what_the_file_is(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("index,mid,display_name\n0,/m/a,stir\n")
    proc = _cli(
        "convert", "--official", str(text), "--dataset", "wear", "--out", str(tmp_path / "o")
    )
    _assert_one_line_error(
        proc, "notes.pth", "a text file (starting 'index,mid,display_name')",
        "expected a published EVI-MAE fine-tuned .pth",
    )  # fmt: skip
    assert not re.search(r"\(\d+\)", proc.stderr), proc.stderr  # no bare error number


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "an empty file"),
        (b"PK\x03\x04" + bytes(60), "a zip archive"),
        (b"\x00\x00\x00\x20ftypisom" + bytes(40), "an MP4/MOV video"),
        (bytes(range(200, 256)) * 3, "unknown binary data (starting c8 c9 ca cb"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    from evimae_stream.model.checkpoint import read_checkpoint

    path = tmp_path / "thing.pth"
    path.write_bytes(data)
    with pytest.raises(ArtifactError, match="not a loadable checkpoint") as err:
        read_checkpoint(path)
    assert expected in str(err.value)


def test_both_artifact_files_get_the_same_mode_under_the_umask(tiny, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        out = save_artifact(tiny, _meta(tiny), tmp_path / "a")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"model.json": 0o644, "model.safetensors": 0o644}
