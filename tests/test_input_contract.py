"""The model's input contract has one owner, the artifact's ``ModelMeta``: the runtime's
``ModelSpec``, the ``PreprocessConfig`` and the ``WindowGeometry`` are derived from it, a
recipe's training data is cut and preprocessed with exactly what its artifact then declares, and
the bundled demo model (whose model.json no longer repeats the preprocessing under ``training``)
and older model.json files that still carry it read the same."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from evimae_stream.artifact import load_artifact, read_meta
from evimae_stream.commands import run as run_command
from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.window import WindowGeometry
from training.config import load_config
from training.data import preprocess_config, window_geometry
from training.prepare import encoder_config

DEMO = run_command.DEMO_MODEL
REPO = Path(__file__).resolve().parents[1]


def test_spec_preprocess_and_windows_derive_from_the_meta() -> None:
    model, meta = load_artifact(DEMO)
    spec = ModelSpec.from_meta(meta)
    assert spec.preprocess == meta.preprocess and spec.geometry == meta.geometry
    assert (spec.num_frames, spec.img_size) == (meta.num_frames, meta.img_size) == (8, 112)
    pre = meta.preprocess
    assert (pre.norm_mean, pre.norm_std) == (meta.norm_mean, meta.norm_std)
    assert (pre.spec_time, pre.spec_freq) == (model.cfg.spec_time, model.cfg.spec_freq)
    assert (pre.num_frames, pre.img_size) == (model.cfg.num_frames, model.cfg.img_size)
    assert meta.geometry == WindowGeometry(2.0, 50.0, 8, 2.0)
    assert (spec.window_s, spec.imu_rate_hz, spec.video_span_s) == (2.0, 50.0, 2.0)
    assert "preprocess" not in meta.training


def test_the_demo_recipe_trains_on_what_its_artifact_declares() -> None:
    _, meta = load_artifact(DEMO)
    cfg = load_config(str(REPO / "configs/train/demo.yaml"), [])
    mcfg = encoder_config(cfg)
    assert preprocess_config(cfg, mcfg.num_frames, mcfg.img_size) == meta.preprocess
    assert window_geometry(cfg, mcfg.num_frames) == meta.geometry


def test_a_model_json_that_still_carries_training_preprocess_reads_the_same(tmp_path: Path):
    old = tmp_path / "old_model"
    shutil.copytree(DEMO, old)
    doc = json.loads((old / "model.json").read_text())
    doc["training"]["preprocess"] = asdict(PreprocessConfig(num_frames=8, img_size=112))
    (old / "model.json").write_text(json.dumps(doc, indent=2) + "\n")
    meta_old, _ = read_meta(old)
    meta_new, _ = read_meta(DEMO)
    assert meta_old.preprocess == meta_new.preprocess
    m_old, _ = load_artifact(old)
    m_new, _ = load_artifact(DEMO)
    for (k, a), (_, b) in zip(m_old.state_dict().items(), m_new.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
