"""The main command on recorded sessions, driven in a subprocess: deterministic max-speed replay,
evaluation outputs, paced replay, IMU-only sessions and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import json
import shutil
import subprocess

import cv2
import pytest

from tests.helpers.cli import cli, events
from tests.helpers.runtime import make_artifact, make_session

SESSION_S = 12.0


def main(capsys, *args) -> subprocess.CompletedProcess:
    """The CLI in this process (bad-input cases: same code, no interpreter start-up)."""
    from evimae_stream.cli import main as cli_main

    capsys.readouterr()
    code = cli_main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_replay")
    return {
        "model": make_artifact(base / "model"),
        "session": make_session(base / "session", seconds=SESSION_S, seed=11),
        "base": base,
    }


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_max_speed_replay_with_auto_backend_is_deterministic(data, tmp_path):
    # auto picks its backend without timing at --speed max (bf16 or fp32 alike every run)
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        proc = cli("--replay", data["session"], "--speed", "max", "--model", data["model"],
                   "--jsonl", out, "--stride", "1")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert sum(p["label"] is not None for p in events(outs[0])[1:-1]) >= int(SESSION_S) - 2


def test_max_speed_replay_is_deterministic_and_complete(data, tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        proc = cli(
            "--replay",
            data["session"],
            "--speed",
            "max",
            "--model",
            data["model"],
            "--jsonl",
            out,
            "--backend",
            "eager",
            "--stride",
            "1",
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    ev = events(outs[0])
    assert ev[0]["type"] == "start" and ev[-1]["type"] == "end"
    preds = ev[1:-1]
    assert [p["window"] for p in preds] == list(range(1, int(SESSION_S) + 1))
    assert ev[-1]["skipped"] == 0 and ev[-1]["windows"] == len(preds)
    labelled = [p for p in preds if p["label"] is not None]
    assert len(labelled) >= len(preds) - 2  # only the first window or two lack data
    for p in labelled:
        if p["t_s"] >= 2.5:  # the 2 s IMU window is full: both modalities (earlier: video only)
            assert p["mode"] == "multimodal" and p["modalities"] == ["imu", "video"]
        assert p["topk"][0]["label"] == p["label"] and p["topk"][0]["score"] == p["score"]
        assert p["latency_ms"] >= 0 and p["t_ref_s"] <= p["t_s"]
        assert set(p["health"]) == {"left_arm", "right_arm", "left_leg", "right_leg", "camera"}
        assert "stages_ms" not in p and "time" not in p
    for p in preds:
        if p["label"] is None:
            assert p["reason"]


def test_eval_writes_report_table_and_timeline(data, tmp_path):
    out = tmp_path / "eval.jsonl"
    proc = cli(
        "--replay",
        data["session"],
        "--speed",
        "max",
        "--model",
        data["model"],
        "--jsonl",
        out,
        "--eval",
        "--eval-out",
        tmp_path / "ev",
        "--quiet",
        "--backend",
        "eager",
        "--stride",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "window accuracy" in proc.stdout and "segment mAP @ tIoU 0.5" in proc.stdout
    report = json.loads((tmp_path / "ev" / "session.eval.json").read_text())
    scored = [p for p in events(out)[1:-1] if p["label"] is not None and p["truth"] is not None]
    assert report["scored_windows"] == len(scored)
    acc = sum(p["label"] == p["truth"] for p in scored) / len(scored)
    assert report["accuracy"] == pytest.approx(acc, abs=1e-4)
    assert set(report["segment_map"]["per_tiou"]) == {"0.3", "0.4", "0.5", "0.6", "0.7"}
    assert report["summary"]["windows"] == int(SESSION_S)
    img = cv2.imread(str(tmp_path / "ev" / "session.timeline.png"))
    assert img is not None and img.shape[1] == 1400
    assert len({tuple(c) for c in img.reshape(-1, 3)[::97]}) > 4  # lanes in several colours


def test_paced_replay_uses_the_live_path(data, tmp_path):
    out = tmp_path / "paced.jsonl"
    proc = cli(
        "--replay",
        data["session"],
        "--speed",
        "6",
        "--model",
        data["model"],
        "--jsonl",
        out,
        "--duration",
        "9",
        "--backend",
        "eager",
    )
    assert proc.returncode == 0, proc.stderr
    preds = [e for e in events(out) if e["type"] == "prediction"]
    assert preds, proc.stderr
    timed = [p for p in preds if p["label"] is not None]
    assert timed and all("stages_ms" in p and "time" in p for p in timed)
    assert {"wait", "assemble", "preprocess", "forward", "postprocess"} <= set(
        timed[-1]["stages_ms"]
    )
    assert "latency ms p50" in proc.stderr and "windows" in proc.stderr


def test_imu_only_session_runs_imu_only(data, tmp_path):
    sess = make_session(tmp_path / "novideo", seconds=6.0, seed=2, video=False)
    out = tmp_path / "imu.jsonl"
    proc = cli("--replay", sess, "--speed", "max", "--model", data["model"], "--jsonl", out,
               "--quiet", "--stride", "1", "--backend", "eager")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    preds = [e for e in events(out) if e["type"] == "prediction" and e["label"]]
    assert preds and all(p["mode"] == "imu_only" and p["modalities"] == ["imu"] for p in preds)
    assert all("camera" not in p["health"] for p in preds)


def test_session_lacking_the_needed_streams(data, tmp_path, capsys):
    model = make_artifact(tmp_path / "mm_only", modes=("multimodal",))
    sess = make_session(tmp_path / "novid", seconds=6.0, seed=2, video=False)
    proc = main(capsys, "--replay", sess, "--speed", "max", "--model", model)
    assert_one_line_error(proc, str(sess), "multimodal")


@pytest.mark.parametrize("speed", ["fast", "0", "-2", "inf"])
def test_bad_speed(data, speed, capsys):
    proc = main(capsys, "--replay", data["session"], "--speed", speed, "--model", data["model"])
    assert_one_line_error(proc, "--speed")


def test_missing_and_corrupt_models(data, tmp_path, capsys):
    proc = main(capsys, "--replay", data["session"], "--model", tmp_path / "nope")
    assert_one_line_error(proc, "nope")
    broken = tmp_path / "broken"
    shutil.copytree(data["model"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    proc = main(capsys, "--replay", data["session"], "--model", broken)
    assert_one_line_error(proc, "model.safetensors")
    (broken / "model.json").write_text("{not json")
    proc = main(capsys, "--replay", data["session"], "--model", broken)
    assert_one_line_error(proc, "model.json")
    pth = tmp_path / "official.pth"
    pth.write_bytes(b"junk")
    assert_one_line_error(main(capsys, "--replay", data["session"], "--model", pth), "--dataset")
    proc = main(capsys, "--replay", data["session"], "--model", pth, "--dataset", "wear")
    assert_one_line_error(proc, "official.pth")


def test_missing_session_gui_and_contradictions(data, tmp_path, capsys):
    assert_one_line_error(
        main(capsys, "--replay", tmp_path / "none", "--model", data["model"]), "none"
    )
    proc = main(capsys, "--gui", "--replay", tmp_path / "gone", "--model", data["model"])
    assert_one_line_error(proc, "gone")
    assert_one_line_error(main(capsys, "--screenshot", tmp_path / "x.png"), "--gui")
    assert_one_line_error(
        main(capsys, "--replay", data["session"], "--camera", "0", "--model", data["model"]),
        "--replay",
    )
    assert_one_line_error(main(capsys, "--stride", "0", "--replay", data["session"]), "--stride")


def test_bad_input_in_a_real_process_has_no_traceback(data):
    proc = cli("--replay", data["session"], "--speed", "warp", "--model", data["model"])
    assert_one_line_error(proc, "--speed")


def test_a_model_with_nan_weights_is_refused_on_its_verification_window(data, tmp_path):
    """Item 16.12: an artifact with a valid checksum whose weights give NaN logits on the first
    window (the one the backend is verified on) is refused with one line, exit 2, no
    traceback, instead of killing the run in the JSONL sink."""
    import torch

    from evimae_stream.artifact import load_artifact, save_artifact

    model, meta = load_artifact(data["model"])
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))
    art = save_artifact(model, meta, tmp_path / "nan_model")
    proc = cli("--replay", data["session"], "--speed", "max", "--model", art,
               "--jsonl", tmp_path / "out.jsonl")  # fmt: skip
    assert_one_line_error(proc, "non-finite logits on its verification window", "nan_model")


def test_a_directory_of_wear_subjects_is_replayed_with_subject(data, wear_dir, tmp_path):
    """Item 16.10: the "several WEAR subjects" error offers an option the CLI has, and it
    works: ``--subject N`` picks ``sbj_N.csv``."""
    from tests.helpers.sessions import build_wear

    root = tmp_path / "wear"
    build_wear(root, wear_dir / "right_wrist_0_10.csv", rows=400)
    (root / "sbj_1.csv").write_bytes((root / "sbj_0.csv").read_bytes())
    proc = cli("--replay", root, "--speed", "max", "--model", data["model"])
    assert_one_line_error(proc, "2 WEAR subjects", "sbj_0, sbj_1", "--subject N")
    proc = cli("--replay", root, "--subject", "7", "--speed", "max", "--model", data["model"])
    assert_one_line_error(proc, "no sbj_7.csv", "sbj_1")
    out = tmp_path / "s1.jsonl"
    proc = cli("--replay", root, "--subject", "1", "--speed", "max", "--model", data["model"],
               "--jsonl", out, "--quiet", "--backend", "eager")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    evs = events(out)
    assert evs[0]["source"].endswith("sbj_1.csv")
    assert sum(e["label"] is not None for e in evs if e["type"] == "prediction") >= 10
    proc = cli("--replay", data["session"], "--subject", "1", "--model", data["model"])
    assert_one_line_error(proc, "subject", "do not apply")


def test_eval_output_comes_in_order_through_one_pipe(data, tmp_path):
    """Item 16.10: with stdout and stderr on one pipe (``2>&1 | less``, a CI log) the --eval
    output reads in the order it was written: what was recognised, the summary (stderr), then
    the metrics table and the report paths (stdout)."""
    from tests.helpers.cli import cli_command
    from tests.helpers.paths import REPO

    proc = subprocess.run(
        cli_command("--replay", data["session"], "--speed", "max", "--model", data["model"],
                    "--eval", "--eval-out", tmp_path / "ev", "--backend", "eager"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()

    def first(prefix: str) -> int:
        return next(i for i, x in enumerate(lines) if x.startswith(prefix))

    order = [first(p) for p in ("recognised", "accuracy ", "windows ", "metric ", "report ")]
    assert order == sorted(order), proc.stdout
