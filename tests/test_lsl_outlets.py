"""``--lsl`` / ``--lsl-sensors`` outlets received by real inlets on loopback: a live run's
predictions (labels, probabilities, metadata) equal its JSONL, the aligned sensors and the
camera's frame indices arrive; label events through the outlet's API; the one-line errors."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import numpy as np
import pytest

from evimae_stream.runtime.lsl_sinks import (
    CAMERA_FRAMES,
    LABELS,
    PREDICTIONS,
    PROBABILITIES,
    PredictionOutlets,
    sensor_stream,
)
from evimae_stream.types import PLACEMENTS
from tests.helpers.cli import events
from tests.helpers.paths import REPO
from tests.helpers.runtime import SYNTH_CLASSES, make_artifact

pylsl = pytest.importorskip("pylsl")


def _inlet(name: str, timeout_s: float):
    found = pylsl.resolve_bypred(f"name='{name}'", 1, timeout_s)
    assert found, f"no LSL stream {name} within {timeout_s} s"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, processing_flags=0)
    inlet.open_stream(timeout=5)
    return inlet


def _desc_channels(info) -> list[tuple[str, str]]:
    out, ch = [], info.desc().child("channels").child("channel")
    while not ch.empty():
        out.append((ch.child_value("label"), ch.child_value("unit")))
        ch = ch.next_sibling()
    return out


def _drain(inlets: dict, got: dict, proc, timeout_s: float) -> None:
    """Pull every inlet until ``proc`` has ended and one more second passed (bounded)."""
    deadline, ended = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        for name, inlet in inlets.items():
            chunk, stamps = inlet.pull_chunk(timeout=0.0)
            got[name][0].extend(chunk)
            got[name][1].extend(stamps)
        if proc.poll() is not None:
            ended = ended or time.monotonic()
            if time.monotonic() - ended > 1.0:
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_live_run_publishes_predictions_and_sensors(tmp_path):
    model = make_artifact(tmp_path / "model")
    out = tmp_path / "live.jsonl"
    imus = ["synthetic", "synthetic?seed=1", "synthetic?seed=2", "synthetic?seed=3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "evimae_stream.cli", "--imu-ports", *imus, "--camera", "synthetic",
         "--model", str(model), "--duration", "7", "--jsonl", str(out), "--quiet",
         "--backend", "eager", "--lsl", "--lsl-sensors"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    names = [PREDICTIONS, PROBABILITIES, CAMERA_FRAMES, *map(sensor_stream, PLACEMENTS)]
    try:
        inlets = {n: _inlet(n, 60.0) for n in names}
        got = {n: ([], []) for n in names}
        _drain(inlets, got, proc, 90.0)
        infos = {n: inlets[n].info(timeout=5) for n in names}
    finally:
        proc.kill() if proc.poll() is None else None
        err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, err
    preds = [e for e in events(out) if e["type"] == "prediction" and e["label"]]
    labels, probs = got[PREDICTIONS][0], np.array(got[PROBABILITIES][0])
    assert len(preds) >= 5 and [m[0] for m in labels] == [p["label"] for p in preds]
    assert probs.shape == (len(preds), len(SYNTH_CLASSES))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for row, p in zip(probs, preds, strict=True):
        assert SYNTH_CLASSES[int(row.argmax())] == p["label"]
        assert abs(float(row.max()) - p["score"]) <= 1e-5
    # metadata, by LSL's conventions
    pinfo = infos[PROBABILITIES]
    assert pinfo.type() == "Probabilities" and pinfo.nominal_srate() == 2.0
    assert _desc_channels(pinfo) == [(c, "probability") for c in SYNTH_CLASSES]
    assert pinfo.desc().child_value("variant") == "evimae_tiny"
    assert pinfo.desc().child("acquisition").child_value("software").startswith("evimae-stream")
    assert infos[PREDICTIONS].type() == "Markers"
    stamps = got[PREDICTIONS][1]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    for p in PLACEMENTS:
        info = infos[sensor_stream(p)]
        assert info.desc().child_value("placement") == p and info.nominal_srate() == 50.0
        assert _desc_channels(info) == [("ax", "g"), ("ay", "g"), ("az", "g")]
        values, t = np.array(got[sensor_stream(p)][0]), np.array(got[sensor_stream(p)][1])
        assert values.shape[1] == 3 and len(t) >= 2 * 50 and (np.diff(t) > 0).all()
        assert 40 < (len(t) - 1) / (t[-1] - t[0]) < 60  # the stream's rate, on LSL's clock
    frames = np.array(got[CAMERA_FRAMES][0])[:, 0]
    assert len(frames) >= 2 * 25 and (np.diff(frames) == 1).all()  # every frame, in order


def test_label_events_reach_an_inlet():
    outlets = PredictionOutlets({"model": "m"}, ["a", "b"], 0.5)
    try:
        inlet = _inlet(LABELS, 5.0)
        now = pylsl.local_clock()
        for k in range(50):  # an inlet may miss what was pushed before it subscribed: resend
            outlets.label_event("stirring", now + k)
            sample, stamp = inlet.pull_sample(timeout=0.1)
            if sample is not None:
                assert sample == ["stirring"] and stamp >= now
                break
        else:
            pytest.fail("no label event arrived")
        assert inlet.info(timeout=5).type() == "Markers"
    finally:
        outlets.close()


def _one_line(*args, hide: str = "") -> str:
    code = (f"import sys; sys.modules[{hide!r}] = None; " if hide else "import sys; ") + (
        "from evimae_stream.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.slow
def test_lsl_errors_are_one_line():
    assert "[lsl]" in _one_line("--lsl", "--imu-ports", "synthetic", hide="pylsl")
    assert "not max" in _one_line("--lsl")  # the demo runs at max speed
