"""Runtime pieces on their own: the missing-modality policy, smoothing, the latest-wins slot,
tick gates, the recorder's stamps, window truth, the pipeline on a rig missing one IMU, an
expected error in the inference thread, and the terminal line's running latency percentiles."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from evimae_stream.artifact import load_artifact
from evimae_stream.clock import VirtualClock
from evimae_stream.errors import InputError
from evimae_stream.rings import FrameRing, ImuRing
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.gate import FrameGate, ImuGate
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.runtime.percentiles import Percentiles
from evimae_stream.runtime.policy import plan_window
from evimae_stream.runtime.recognizer import Recognizer
from evimae_stream.runtime.recorder import GateRecorder
from evimae_stream.runtime.rig import build_rig
from evimae_stream.runtime.scheduler import LatestSlot
from evimae_stream.runtime.smoothing import Smoother
from evimae_stream.sessions import open_session
from evimae_stream.streams import StreamSpec
from evimae_stream.truth import window_truth
from evimae_stream.types import MODES, PLACEMENTS, Segment
from evimae_stream.window import due_tick, tick_ns
from tests.helpers.runtime import make_artifact, make_session, replay_at_max_speed

ALL = dict.fromkeys(PLACEMENTS, True)


def test_policy_full_rig_is_multimodal():
    plan = plan_window(ALL, True, MODES)
    assert plan.mode == "multimodal" and plan.modalities == ("imu", "video")
    assert plan.slots == {p: p for p in PLACEMENTS} and plan.filled == {}


def test_policy_camera_missing_is_imu_only_and_fills_mirrors():
    present = {"left_arm": False, "right_arm": True, "left_leg": True, "right_leg": False}
    plan = plan_window(present, False, MODES)
    assert plan.mode == "imu_only" and plan.modalities == ("imu",)
    assert plan.filled == {"left_arm": "right_arm", "right_leg": "left_leg"}
    one = plan_window({"left_leg": True}, True, MODES)
    assert one.filled == {"left_arm": "left_leg", "right_arm": "left_leg", "right_leg": "left_leg"}


def test_policy_all_imus_missing():
    none = dict.fromkeys(PLACEMENTS, False)
    assert plan_window(none, True, MODES).mode == "video_only"
    plan = plan_window(none, True, ("multimodal", "imu_only"))
    assert plan.mode is None and "only video data" in plan.reason
    plan = plan_window(none, False, MODES, {"camera": "down: unplugged"})
    assert plan.mode is None and "camera: down: unplugged" in plan.reason


def test_policy_respects_supported_modes():
    assert plan_window(ALL, True, ("imu_only",)).mode == "imu_only"
    assert plan_window(ALL, True, ("video_only",)).mode == "video_only"
    assert plan_window(ALL, False, ("multimodal",)).mode is None


def test_smoother_averages_last_n_and_forgets_gaps():
    s = Smoother(2)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(s.update(1, a), a)
    np.testing.assert_allclose(s.update(2, b), [0.5, 0.5])
    np.testing.assert_allclose(s.update(3, b), b)
    np.testing.assert_allclose(s.update(9, a), a)  # a gap: starts over
    with pytest.raises(ValueError):
        Smoother(0)


def test_latest_slot_keeps_the_newest_and_counts_replaced():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.get(0.01) == 3 and slot.replaced == 2
    assert slot.get(0.01) is None
    got = []
    t = threading.Thread(target=lambda: got.append(slot.get(5)))
    t.start()
    slot.close()
    t.join(2)
    assert got == [None]


def test_tick_arithmetic():
    assert tick_ns(100, 0.5, 3) == 100 + 1_500_000_000
    assert due_tick(100, 0.5, 100 + 1_499_999_999) == 2
    assert due_tick(100, 0.5, 50) == 0


def test_imu_gate_releases_up_to_the_tick_in_order():
    clock = VirtualClock(0)
    ring = ImuRing("left_arm", 100, 3, 50.0, clock=clock)
    seen = []

    class Rec:
        def add_imu(self, p, t, v, d):
            seen.append((p, t, len(v)))

    gate = ImuGate("left_arm", ring, Rec())
    for i in range(5):
        gate.push(i * 20_000_000, np.arange(6, dtype=np.float32) + i, t_dev=i * 0.02)
    assert len(ring) == 0  # nothing reaches the ring before a release
    assert gate.release(40_000_000) == 3
    assert len(ring) == 3 and ring.channels == 3
    assert [s[1] for s in seen] == [0, 20_000_000, 40_000_000] and seen[0][2] == 6
    assert gate.release(None) == 2 and len(ring) == 5


def test_frame_gate_resizes_for_the_ring_only():
    ring = FrameRing("camera", 8, 30.0, clock=VirtualClock(0))
    recorded = []

    class Rec:
        def add_frame(self, t, f):
            recorded.append(f.shape)

    gate = FrameGate("camera", ring, Rec(), resize_to=16)
    gate.push_frame(5, np.zeros((48, 64, 3), np.uint8))
    gate.release(10)
    assert recorded == [(48, 64, 3)]
    assert ring.latest()[1].shape == (16, 16, 3)


def test_recorder_keeps_stamps_increasing_and_all_channels(tmp_path):
    streams = StreamSpec(imu_rates={"left_arm": 50.0}, imu_uris={"left_arm": "x"})
    rec = GateRecorder(tmp_path / "rec", 1_000, streams)
    for k in range(3):  # one batched read: three samples with the same arrival stamp
        rec.add_imu("left_arm", 5_000, np.array([k, 0, 1, 2, 3, 4], np.float32), 0.02 * k)
    rec.add_imu("left_arm", 4_000_000_000, np.array([9, 0, 1, 2, 3, 4], np.float32), 0.1)
    rec.close()
    s = open_session(tmp_path / "rec")
    stream = s.imu["left_arm"]
    assert stream.values.shape == (4, 6)
    assert np.all(np.diff(stream.t) > 0) and rec.nudged == 2
    np.testing.assert_array_equal(stream.values[:, 0], [0, 1, 2, 9])
    s.close()


def test_window_truth_is_the_label_at_the_window_centre():
    labels = [Segment(0, 3, "a"), Segment(3, 10, "b")]
    assert window_truth(labels, 4.0, 2.0) == "b"
    assert window_truth(labels, 3.5, 2.0) == "a"
    assert window_truth(labels, 20.0, 2.0) is None


def test_percentiles():
    p = Percentiles()
    for v in range(1, 101):
        p.add(v)
    s = p.summary()
    assert s["p50"] == pytest.approx(50.5) and s["p99"] == pytest.approx(99.01)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("units")
    art = make_artifact(base / "model")
    sess = make_session(base / "sess", seconds=8.0, seed=5)
    return art, sess


def test_pipeline_fills_a_missing_imu_and_reports_it(small_run):
    art, sess = small_run
    emitted = []

    class Collect:
        def emit(self, pred):
            emitted.append(pred)

    outputs, recognizer = replay_at_max_speed(
        art, sess, [Collect()], skip_imus=("left_leg",), camera=False
    )
    spec = recognizer.spec
    preds = [p for p in emitted if p.label is not None]
    assert [p.index for p in emitted] == list(range(1, 17))  # 8 s at 0.5 s: nothing skipped
    assert len(preds) >= 10
    for p in preds:
        assert p.mode == "imu_only" and p.modalities == ("imu",)
        assert p.filled == {"left_leg": "right_leg"}
        assert p.imus == ["left_arm", "right_arm", "right_leg"]
        assert p.label in spec.classes and 0 < p.score <= 1
        assert p.health["left_arm"]["up"] and "left_leg" not in p.health
    full = [p for p in outputs.predictions if p.label is not None]
    assert all(p.probs.sum() == pytest.approx(1.0) for p in full)


def test_first_prediction_of_a_run_uses_every_imu(small_run):
    """Item 16.3: the run's first prediction is not a video-only guess made while the IMUs
    fill their first window (it started 1.9-5.7 ms before their first samples); windows before
    every stream has a whole window get no prediction, and say they are warming up."""
    art, sess = small_run
    emitted = []

    class Collect:
        def emit(self, pred):
            emitted.append(pred)

    replay_at_max_speed(art, sess, [Collect()])
    first = next(i for i, p in enumerate(emitted) if p.label is not None)
    assert first > 0 and all(p.reason.startswith("warming up") for p in emitted[:first])
    p = emitted[first]
    assert p.mode == "multimodal" and p.imus == list(PLACEMENTS) and not p.filled
    assert all(p.mode != "video_only" for p in emitted)


def _paced_live_run(
    art, sess, sinks, start_after_s: float | None = None, config: RuntimeConfig | None = None
):
    """A LiveRun over a paced (8x) replay of ``sess`` until the replay ends (eager fp32 unless
    ``config``); windows from ``start_after_s`` after the origin when given."""
    from drivers.factory import make_replay_driver
    from evimae_stream.clock import ScaledClock
    from evimae_stream.runtime.run import Composer, LoadedModel

    model, meta = load_artifact(art)
    spec = ModelSpec.from_meta(meta)
    composer = Composer(LoadedModel(model, spec), config or RuntimeConfig(backend="eager"))
    with open_session(sess) as session:
        clock = ScaledClock(8.0)
        streams = StreamSpec.from_session(session, camera=False)
        origin = clock()
        start = None if start_after_s is None else origin + round(start_after_s * 1e9)
        rig = composer.rig(streams, origin, start)
        driver = make_replay_driver(session, rig.gates.imu, None, clock)
        live = composer.live_run(rig, composer.outputs(sinks), host_clock=clock, speed=8.0)
        driver.start()
        try:
            live.run(lambda: not driver.running)
        finally:
            driver.stop()


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on this machine's GPU")
def test_an_expected_error_in_the_inference_thread_is_one_log_line(small_run, caplog):
    # the CLI refuses fp16 on a CPU before starting; a library caller that did not check
    # reaches the backend choice in the inference thread, on the first window with data
    art, sess = small_run
    config = RuntimeConfig(backend="eager", precision="fp16")
    with caplog.at_level(logging.DEBUG), pytest.raises(InputError, match="fp16"):
        _paced_live_run(art, sess, [], config=config)
    mine = [r for r in caplog.records if r.name == "evimae_stream.runtime.live"]
    errors = [r for r in mine if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "fp16 needs a CUDA GPU" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()


class _Collect:
    def __init__(self) -> None:
        self.preds: list = []

    def emit(self, pred) -> None:
        self.preds.append(pred)


def test_a_live_run_cuts_no_window_before_its_start(small_run):
    # a paced replay after a seek: the rings hold data from the seek on, so no window may end
    # before it (a window there could hold nothing of it)
    art, sess = small_run
    whole, after = _Collect(), _Collect()
    _paced_live_run(art, sess, [whole])
    _paced_live_run(art, sess, [after], start_after_s=3.2)
    assert whole.preds[0].index <= 2  # from the first tick (the second when cut late)
    assert after.preds and after.preds[0].index >= 7  # tick 7 = 3.5 s, the first >= 3.2 s
    assert all(p.tick_ns - p.origin_ns >= 3.2e9 for p in after.preds)


def test_a_failing_sink_ends_the_live_run_and_reaches_the_caller(small_run, caplog):
    # predictions are emitted from the inference thread: a sink's error there must still stop
    # the run and be raised by run(), as it was when the caller's thread emitted
    art, sess = small_run

    class ClosedPipe:
        calls = 0

        def emit(self, pred) -> None:
            self.calls += 1
            if self.calls == 3:
                raise BrokenPipeError(32, "Broken pipe")

    sink = ClosedPipe()
    with caplog.at_level(logging.DEBUG), pytest.raises(BrokenPipeError):
        _paced_live_run(art, sess, [sink])
    assert sink.calls == 3  # nothing emitted after the failure
    mine = [r for r in caplog.records if r.name == "evimae_stream.runtime.live"]
    assert not [r for r in mine if r.levelno >= logging.ERROR]  # the caller reports it


def test_terminal_line_shows_running_latency_percentiles(small_run):
    import io

    from evimae_stream.runtime.sinks import TerminalLine, summary_lines

    art, sess = small_run
    stream = io.StringIO()
    line = TerminalLine(stream, hz=float("inf"))  # draw every prediction
    seen = []

    class Collect:
        def emit(self, pred):
            seen.append(pred)

    outputs, recognizer = replay_at_max_speed(art, sess, [Collect(), line], stride_s=0.25)
    summary = outputs.summary(recognizer.backend, {})
    line.close()
    drawn = stream.getvalue().rstrip("\n").split("\r")[1:]
    assert len(drawn) == len(seen) == 32
    latencies: list[float] = []
    for text, pred in zip(drawn, seen, strict=True):
        if pred.label is None:
            assert "(no prediction:" in text
        else:
            latencies.append(pred.latency_ms)
            assert f"{pred.label} {pred.score:.2f} [{pred.mode}] | {pred.latency_ms:.0f} ms" in text
        if latencies:  # the percentiles of every latency so far, at each prediction
            q = [round(float(x), 3) for x in np.percentile(latencies, [50, 95, 99])]
            assert f"p50/95/99 {q[0]:.0f}/{q[1]:.0f}/{q[2]:.0f} | " in text, text
        else:
            assert "p50/95/99" not in text
    assert len(latencies) >= 20 and len(set(np.round(latencies))) > 1  # not one constant
    # the exit summary: the same percentiles over the whole run
    q = [round(float(x), 3) for x in np.percentile(latencies, [50, 95, 99])]
    assert summary["latency_ms"]["p50"] == pytest.approx(q[0])
    want = f"latency ms p50 {q[0]:.1f} p95 {q[1]:.1f} p99 {q[2]:.1f} (virtual clock)"
    assert want in summary_lines(summary)


def _rig_with_imus(spec, until_ns: dict[str, int], seed: int = 4):
    """A camera-less rig whose four IMU gates hold 3 s of 50 Hz samples, each up to its
    ``until_ns`` (pushed, not released)."""
    ticks = VirtualClock(0)
    rig = build_rig(spec, StreamSpec(imu_rates=dict.fromkeys(PLACEMENTS, 50.0)), ticks)
    buffer, gates = rig.buffer, rig.gates
    rng = np.random.default_rng(seed)
    t = np.arange(150, dtype=np.int64) * 20_000_000
    values = {p: rng.normal(size=(150, 3)).astype(np.float32) for p in PLACEMENTS}
    for p in PLACEMENTS:
        keep = t <= until_ns[p]
        gates.imu[p].push_block(t[keep], values[p][keep])
    return buffer, gates, ticks, t, values


def test_early_preprocessing_is_used_only_when_the_window_did_not_change(small_run):
    art, _ = small_run
    model, meta = load_artifact(art)
    spec = ModelSpec.from_meta(meta)
    recognizer = Recognizer(model, spec, RuntimeConfig(backend="eager"))
    tick = 2_500_000_000
    everything = dict.fromkeys(PLACEMENTS, tick)

    def one_release(until):  # what a single release at the cut would give
        buffer, gates, ticks, *_ = _rig_with_imus(spec, until)
        ticks.set_ns(tick)
        gates.release(tick)
        return recognizer.assemble(buffer, tick, 5)

    # nothing arrives between the early release and the cut: the early inputs are used
    buffer, gates, ticks, _, _ = _rig_with_imus(spec, everything)
    ticks.set_ns(tick)
    gates.release(tick)
    early = recognizer.assemble(buffer, tick, 5)
    assert gates.release(tick) == 0
    cut = recognizer.assemble(buffer, tick, 5, early=early)
    assert cut.early and cut.inputs is early.inputs and cut.plan == early.plan
    assert torch.equal(cut.inputs.imu, one_release(everything).inputs.imu)

    # left_arm's last 200 ms arrive after the early release: the window is preprocessed again
    late = {**everything, "left_arm": tick - 200_000_000}
    buffer, gates, ticks, t, values = _rig_with_imus(spec, late)
    ticks.set_ns(tick)
    gates.release(tick)
    early = recognizer.assemble(buffer, tick, 5)
    arriving = (t > late["left_arm"]) & (t <= tick)
    gates.imu["left_arm"].push_block(t[arriving], values["left_arm"][arriving])
    assert gates.release(tick) == int(arriving.sum()) == 10
    cut = recognizer.assemble(buffer, tick, 5, early=early)
    assert not cut.early and cut.inputs is not early.inputs
    assert not torch.equal(cut.inputs.imu, early.inputs.imu)
    assert torch.equal(cut.inputs.imu, one_release(everything).inputs.imu)
    # an early job of another tick is never used
    other = recognizer.assemble(buffer, tick, 5, early=replace(early, tick_ns=tick - 1))
    assert not other.early


def _damaged(art):
    """The artifact's model with every weight NaN (what a corrupt file with a valid checksum
    loads as)."""
    model, meta = load_artifact(art)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))
    return model, meta


def test_non_finite_logits_give_no_prediction_with_a_reason(small_run, tmp_path):
    """Item 16.12: NaN logits after the backend's verification get no prediction and a reason;
    the JSONL sink (no NaN allowed) writes every window and the run ends normally."""
    from evimae_stream.runtime.backends.eager import EagerBackend
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel
    from evimae_stream.runtime.sinks import JsonlSink

    art, sess = small_run
    model, meta = _damaged(art)
    spec = ModelSpec.from_meta(meta)
    sink = JsonlSink(tmp_path / "out.jsonl", timings=False)
    backend = EagerBackend(model, "fp32", torch.device("cpu"))  # already chosen: no verification
    config = RuntimeConfig(backend="eager", stride_s=0.5)
    composer = Composer(LoadedModel(model, spec), config, Hooks(sinks=[sink]), backend=backend)
    with open_session(sess) as session:
        result = composer.replay(session, None)
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    preds = result.outputs.predictions
    assert len(lines) == len(preds) == 16
    forwarded = [e for e in lines if e["reason"] and "not finite" in e["reason"]]
    assert len(forwarded) >= 10
    assert all(e["label"] is None and e["mode"] is None and e["topk"] == [] for e in lines)
    assert all(p.label is None for p in preds)


@pytest.mark.parametrize("bad", [1e30, -500.0, float("nan"), float("inf")])
def test_imu_values_beyond_the_physical_range_are_rejected_at_the_ring(bad):
    """Item 16.12: the input stage drops values no body-worn IMU reports (here |acc| > 400 g)
    and counts them, one sample or a block alike; 1e30 g no longer reaches the model."""
    ring = ImuRing("left_arm", 64, 6, 50.0, clock=VirtualClock(0))
    good = np.array([0.1, -0.2, 1.0, 250.0, -1999.0, 30.0], np.float32)
    ring.push(1_000_000, good)
    ring.push(21_000_000, np.array([bad, 0, 1, 0, 0, 0], np.float32))
    ring.push(41_000_000, np.array([0, 0, 1, 0, 0, bad * 100], np.float32))  # gyro beyond 5000
    block = np.stack([good, good, good])
    block[1, 2] = bad
    stored = ring.push_block(np.array([61, 81, 101]) * 1_000_000, block)
    assert stored == 2 and ring.bad_values == 3 and len(ring) == 3
    assert np.abs(ring.latest(3).values).max() < 2000
