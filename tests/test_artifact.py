"""Model artifacts: round trip, and every way a model directory can be broken."""

from __future__ import annotations

import json
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


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_artifact(tmp_path / "nope")


def test_missing_json(artifact: Path) -> None:
    (artifact / "model.json").unlink()
    with pytest.raises(ArtifactError, match=r"model\.json: missing"):
        load_artifact(artifact)


def test_corrupt_json(artifact: Path) -> None:
    (artifact / "model.json").write_text('{"format": "evimae-stream-model", ')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(artifact)


def test_newer_format_version(artifact: Path) -> None:
    doc = json.loads((artifact / "model.json").read_text())
    doc["format_version"] = 99
    (artifact / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="format_version 99"):
        load_artifact(artifact)


def test_missing_weights(artifact: Path) -> None:
    (artifact / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match=r"model\.safetensors: missing"):
        load_artifact(artifact)


def test_corrupt_weights_caught_by_checksum(artifact: Path) -> None:
    path = artifact / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(artifact)


def test_truncated_weights_without_checksum(artifact: Path) -> None:
    path = artifact / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    doc = json.loads((artifact / "model.json").read_text())
    del doc["weights_sha256"]
    (artifact / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="unreadable safetensors"):
        load_artifact(artifact)


def test_weights_of_another_shape(tmp_path: Path, tiny) -> None:
    art = save_artifact(tiny, _meta(tiny), tmp_path / "art")
    doc = json.loads((art / "model.json").read_text())
    doc["classes"] = [*CLASSES, "extra"]
    (art / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"shape mismatch.*mlp_head"):
        load_artifact(art)


def test_unknown_variant(artifact: Path) -> None:
    doc = json.loads((artifact / "model.json").read_text())
    doc["variant"] = "evimae_huge"
    (artifact / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="evimae_huge"):
        load_artifact(artifact)


def test_invalid_meta_field(artifact: Path) -> None:
    doc = json.loads((artifact / "model.json").read_text())
    doc["norm_std"] = 0
    (artifact / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="norm_std"):
        load_artifact(artifact)


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


@pytest.mark.slow
def test_convert_official_checkpoint_end_to_end(tmp_path: Path) -> None:
    """A published-layout checkpoint (module. prefix, pickle) converts and predicts identically."""
    torch.manual_seed(3)
    ref = create_model("evimae_small", 32).eval()
    ckpt = tmp_path / "cmummac_finetuned.pth"
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, ckpt)
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
