"""``--backend`` and ``--precision`` on the command line, in a subprocess: a precision this machine
cannot run is refused up front in every mode, bf16 runs, the TensorRT path (export → compile →
cache → verify, then a load from the cache) runs with the stand-in compiler of
tests/mocks/tensorrt.py, importable as ``torch_tensorrt`` from tests/mocks/trt_package, and the
AOTInductor path runs for real."""

from __future__ import annotations

import json
import os

import pytest
import torch

from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO
from tests.helpers.runtime import make_artifact, make_session

STANDIN = REPO / "tests" / "mocks" / "trt_package"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_backends")
    return {
        "model": make_artifact(base / "model"),
        "imu_model": make_artifact(base / "imu_model", modes=("imu_only",)),
        "session": make_session(base / "session", seconds=6.0, seed=11),
        "imu_session": make_session(base / "imu_session", seconds=6.0, seed=2, video=False),
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on this machine's GPU")
@pytest.mark.parametrize("mode", ["max", "paced", "live"])
def test_fp16_without_a_gpu_is_one_line_before_anything_starts(data, mode, tmp_path):
    source = {
        "max": ["--replay", data["session"], "--speed", "max"],
        "paced": ["--replay", data["session"], "--speed", "4"],
        # a recording would be created by the first sample: the check comes before the drivers
        "live": ["--imu-ports", "synthetic", "--no-camera", "--duration", "5",
                 "--record", tmp_path / "rec"],
    }[mode]  # fmt: skip
    out = tmp_path / "out.jsonl"
    proc = cli(*source, "--model", data["model"], "--precision", "fp16", "--jsonl", out)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert "--precision fp16" in lines[0] and "CUDA" in lines[0]
    assert not out.exists() and not (tmp_path / "rec").exists()


def test_bf16_on_the_command_line(data, tmp_path):
    replay = ["--replay", data["session"], "--speed", "max", "--model", data["model"],
              "--backend", "eager", "--stride", "1"]  # fmt: skip
    out = tmp_path / "bf16.jsonl"
    proc = cli(*replay, "--precision", "bf16", "--jsonl", out)
    assert proc.returncode == 0, proc.stderr
    preds = [e for e in events(out) if e["type"] == "prediction" and e["label"]]
    assert len(preds) >= 4
    # verified against eager fp32 on the first real window, and used (no fallback note)
    backend_line = next(x for x in proc.stderr.splitlines() if x.startswith("backend "))
    assert backend_line == "backend eager/bf16/cpu", proc.stderr
    # and really in bf16: scores differ from an fp32 run of the same replay
    fp32 = tmp_path / "fp32.jsonl"
    proc = cli(*replay, "--jsonl", fp32, "--quiet")
    assert proc.returncode == 0, proc.stderr
    ref = {e["window"]: e for e in events(fp32) if e["type"] == "prediction" and e["label"]}
    assert sorted(ref) == [p["window"] for p in preds]
    diffs = [abs(p["score"] - ref[p["window"]]["score"]) for p in preds]
    assert 0 < max(diffs) < 0.1, diffs


def test_tensorrt_on_the_command_line_compiles_caches_then_loads(data, tmp_path):
    cache = tmp_path / "engines"
    env = {"PYTHONPATH": os.pathsep.join([str(STANDIN), str(REPO)])}
    runs = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.jsonl"
        calls = tmp_path / f"{name}.calls.json"
        proc = cli("-v", "--replay", data["imu_session"], "--speed", "max",
                   "--model", data["imu_model"], "--backend", "tensorrt",
                   "--engine-cache", cache, "--stride", "1", "--jsonl", out,
                   env={**env, "EVIMAE_STANDIN_TRT_CALLS": str(calls)})  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "falling back" not in proc.stderr
        assert "backend tensorrt/fp32/cpu verified" in proc.stderr
        assert "\nbackend tensorrt/fp32/cpu\n" in proc.stderr  # the summary
        runs.append((events(out), json.loads(calls.read_text()), proc.stderr))
    (ev1, calls1, err1), (ev2, calls2, err2) = runs
    # first run: torch.export + the compiler, the engine saved under the cache key
    assert calls1 == {"compile": 1, "save": 1, "load": 0, "precisions": [["float32"]]}
    assert "exporting and compiling mode imu_only" in err1 and "cached imu_only engine" in err1
    (engine,) = cache.iterdir()
    assert "trt2.99.0-standin" in engine.name and engine.name.endswith("fp32__imu_only.pt2")
    # second run: loaded from the cache, nothing compiled
    assert calls2 == {"compile": 0, "save": 0, "load": 1, "precisions": []}
    assert "loaded imu_only engine" in err2 and "compiling" not in err2
    preds = [e for e in ev1 if e["type"] == "prediction" and e["label"]]
    assert len(preds) >= 3 and all(p["mode"] == "imu_only" for p in preds)
    assert ev1 == ev2


@pytest.mark.slow
def test_aot_on_the_command_line_compiles_caches_then_loads(data, tmp_path):
    # a real AOTInductor compile (~10 s): the first run builds and caches, the second loads
    cache = tmp_path / "engines"
    replay = ["-v", "--replay", data["imu_session"], "--speed", "max", "--model",
              data["imu_model"], "--engine-cache", cache, "--stride", "1"]  # fmt: skip
    runs = []
    for name in ("first", "second"):
        out = tmp_path / f"{name}.jsonl"
        proc = cli(*replay, "--backend", "aot", "--jsonl", out)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "falling back" not in proc.stderr
        assert "\nbackend aot/fp32/cpu\n" in proc.stderr  # the summary
        runs.append((events(out), proc.stderr))
    (ev1, err1), (ev2, err2) = runs
    assert "exporting and compiling mode imu_only" in err1
    assert "loaded imu_only package" in err2 and "compiling" not in err2
    (package,) = cache.glob("*.pt2")
    cpu = torch.backends.cpu.get_cpu_capability()
    torch_version = torch.__version__.replace("+", "-")
    # the runtime's default of one torch thread builds a serial package (no OpenMP loops)
    assert package.name.endswith(f"__torch{torch_version}__cpu-{cpu}__serial__fp32__imu_only.pt2")
    assert ev1 == ev2
    # the same predictions as eager fp32, window for window
    eager = tmp_path / "eager.jsonl"
    proc = cli(*replay, "--backend", "eager", "--jsonl", eager, "--quiet")
    assert proc.returncode == 0, proc.stderr
    got = [e for e in ev1 if e["type"] == "prediction" and e["label"]]
    want = [e for e in events(eager) if e["type"] == "prediction" and e["label"]]
    assert len(got) >= 3 and [e["window"] for e in got] == [e["window"] for e in want]
    assert [e["label"] for e in got] == [e["label"] for e in want]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got, want, strict=True)) < 1e-4
