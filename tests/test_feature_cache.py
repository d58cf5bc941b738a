"""Window features: computed through the runtime's own windows and forward (a run with the
feature backend predicts exactly what a plain run predicts, and the fused embedding is the
vector the prediction's head was applied to), the safetensors + index cache keyed by (session,
model, stride), the fixed-memory ring, and the ``features`` command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from evimae_stream.feature_cache import KINDS, FeatureCache, FeatureSequence, load_sequence
from evimae_stream.runtime.features import FeatureRing, extract_features
from tests.helpers.cli import cli
from tests.helpers.runtime import make_artifact, make_session, replay_at_max_speed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("features")
    return {
        "model": make_artifact(base / "model"),
        "session": make_session(base / "session", seconds=8.0, seed=5),
        "base": base,
    }


def _loaded(art: Path):
    from evimae_stream.commands.features import load_for_features

    return load_for_features(art)


def _sequence(data) -> FeatureSequence:
    from evimae_stream.sessions import open_session

    with open_session(data["session"]) as session:
        return extract_features(_loaded(data["model"]), session, 0.5)


def test_features_come_from_the_runs_own_windows_and_forward(data) -> None:
    outputs, _ = replay_at_max_speed(data["model"], data["session"])
    preds = [p for p in outputs.predictions if p.label is not None]
    seq = _sequence(data)
    assert len(seq) == len(preds) > 5
    np.testing.assert_allclose(seq.t_end_s, [p.t_ref_s for p in preds])
    np.testing.assert_allclose(seq.t_end_s - seq.t_start_s, 2.0)
    assert seq.counts() == {k: len(seq) for k in KINDS}  # a multimodal session: every kind
    # the recogniser's probabilities of a plain run (the feature backend is eager fp32)
    np.testing.assert_allclose(seq.probs, np.stack([p.probs for p in preds]), atol=1e-6)
    # the fused embedding is what the head classified: head(fused) = the run's probabilities
    loaded = _loaded(data["model"])
    with torch.no_grad():
        logits = loaded.model.mlp_head(torch.from_numpy(seq.feats["fused"]))
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), seq.probs, atol=1e-5)
    assert not np.allclose(seq.feats["imu"], seq.feats["fused"])


def test_the_cache_is_keyed_by_session_model_and_stride(data, tmp_path) -> None:
    seq = _sequence(data)
    cache = FeatureCache(tmp_path / "cache")
    entry = cache.put(data["session"], "model-a", 0.5, seq)
    again = FeatureCache(tmp_path / "cache")  # from index.json
    assert again.find(data["session"], "model-a", 0.5) == entry
    assert again.find(data["session"], "model-b", 0.5) is None
    assert again.find(data["session"], "model-a", 1.0) is None
    back = again.load(entry)
    for k in KINDS:
        np.testing.assert_array_equal(back.feats[k], seq.feats[k])
    np.testing.assert_array_equal(back.t_end_s, seq.t_end_s)
    np.testing.assert_array_equal(back.probs, seq.probs)
    # the documented layout, readable without evimae-stream
    raw = load_file(str(tmp_path / "cache" / entry["file"]))
    assert set(raw) == {"t_start_s", "t_end_s", "present", "probs", *KINDS}
    assert raw["present"].shape == (len(seq), 3) and raw["imu"].dtype == np.float32
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert index["format"] == "evimae-stream-features"
    assert index["entries"][0]["windows"] == len(seq) and index["entries"][0]["dim"] == seq.dim
    # a changed session misses the cache
    labels = data["session"] / "labels.csv"
    st = labels.stat()
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert again.find(data["session"], "model-a", 0.5) is None


def test_a_damaged_feature_file_is_one_clear_error(tmp_path) -> None:
    from evimae_stream.errors import InputError

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"x\.safetensors"):
        load_sequence(bad)


def test_the_ring_keeps_the_newest_windows_in_fixed_memory() -> None:
    ring = FeatureRing(4)
    for i in range(3):
        ring.append(i, i + 2, {"imu": np.full(5, i, np.float32)}, np.array([0.2, 0.8]))
    size = ring.nbytes
    for i in range(3, 10):
        vid = np.full(5, -i, np.float32) if i % 2 else None
        feats = {"imu": np.full(5, i, np.float32), **({"video": vid} if vid is not None else {})}
        ring.append(i, i + 2, feats, np.array([0.5, 0.5]))
    assert ring.nbytes == size and len(ring) == 4 and ring.count == 10
    seq = ring.sequence()
    assert seq.t_start_s.tolist() == [6, 7, 8, 9]
    assert seq.feats["imu"][:, 0].tolist() == [6, 7, 8, 9]
    assert seq.present[:, KINDS.index("video")].tolist() == [False, True, False, True]
    assert np.isnan(seq.feats["video"][0]).all() and seq.feats["video"][1, 0] == -7
    assert ring.sequence(since_s=9.5).t_start_s.tolist() == [8, 9]


@pytest.mark.slow
def test_the_features_command_computes_then_reuses(data, tmp_path) -> None:
    out = tmp_path / "feats"
    args = ("features", data["session"], "--model", data["model"], "--out", out)
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "(computed)" in first.stdout
    second = cli(*args)
    assert second.returncode == 0 and "(cached)" in second.stdout
    entry = json.loads((out / "index.json").read_text())["entries"][0]
    assert entry["stride_s"] == 0.5 and entry["present"]["video"] == entry["windows"]
    bad = cli("features", tmp_path / "nope", "--model", data["model"], "--out", out)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr
