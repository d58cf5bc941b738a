"""The composer of runs (evimae_stream.runtime.run): its hooks and its clean-up, on real runs."""

from __future__ import annotations

import threading

import pytest

from evimae_stream.artifact import load_artifact
from evimae_stream.errors import DeviceError
from evimae_stream.runtime.config import RuntimeConfig
from evimae_stream.runtime.events import Prediction
from evimae_stream.runtime.inputs import ModelSpec
from evimae_stream.runtime.outputs import Outputs
from evimae_stream.runtime.run import Composer, Hooks, LoadedModel, OutputConfig, plan_sources
from evimae_stream.sessions import open_session
from evimae_stream.types import PLACEMENTS
from tests.helpers.runtime import make_artifact, make_session


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("composer")
    return make_artifact(base / "model"), make_session(base / "sess", seconds=6.0, seed=9)


def _loaded(art) -> LoadedModel:
    model, meta = load_artifact(art)
    return LoadedModel(model, ModelSpec.from_meta(meta), "test", str(art), meta.variant)


class _Collect:
    def __init__(self) -> None:
        self.preds: list[Prediction] = []

    def emit(self, pred: Prediction) -> None:
        self.preds.append(pred)


def test_an_extra_sink_and_the_stage_hook_see_every_window(assets, tmp_path):
    art, sess = assets
    sink, events = _Collect(), []
    hooks = Hooks(sinks=[sink], on_stage=lambda event, index: events.append((event, index)))
    composer = Composer(_loaded(art), RuntimeConfig(backend="eager"), hooks)
    jsonl = tmp_path / "out.jsonl"
    with open_session(sess) as session:
        result = composer.replay(session, None, OutputConfig(jsonl=str(jsonl)))
    # 6 s at 0.5 s: twelve windows, each to the configured JSONL sink and to the extra one
    assert [p.index for p in sink.preds] == list(range(1, 13))
    assert len(jsonl.read_text().splitlines()) == 12 + 2  # start and end events
    assert result.summary["windows"] == 12
    predicted = [p.index for p in sink.preds if p.label is not None]
    assert len(predicted) >= 8
    for k in range(1, 13):
        seen = [e for e, i in events if i == k]
        assert seen[:2] == ["assemble", "assembled"]  # every window is assembled
        if k in predicted:  # and every predicted one passes the forward, in order
            assert seen == ["assemble", "assembled", "forward", "postprocessed"]


def test_the_speed_hook_reports_wall_milliseconds_at_the_current_speed():
    speed = [1.0]
    outputs = Outputs([], timings=False, speed=lambda: speed[0])
    for k, s in enumerate((1.0, 4.0), start=1):
        speed[0] = s
        pred = Prediction(k, 10_000_000_000, 0, None, label="a", newest_ns=9_960_000_000)
        outputs.emit(pred, 10_000_000_000)
        assert pred.latency_ms == pytest.approx(40.0 / s)


class _StopFails:
    """Wraps a real driver; its stop() raises after stopping the driver (a broken close)."""

    def __init__(self, driver) -> None:
        self.driver = driver
        self.stopped = False

    def __getattr__(self, name):
        return getattr(self.driver, name)

    def stop(self, timeout_s: float = 2.0) -> None:
        self.driver.stop(timeout_s)
        self.stopped = True
        raise OSError("close failed")


def test_clean_up_stops_every_driver_even_when_one_fails(assets, monkeypatch):
    import drivers.factory

    art, _ = assets
    made: dict = {}
    real = drivers.factory.make_drivers

    def make(plan, imu_sinks, frame_sink):
        built = real(plan, imu_sinks, frame_sink)
        built["left_arm"] = _StopFails(built["left_arm"])
        made.update(built)
        return built

    monkeypatch.setattr(drivers.factory, "make_drivers", make)
    plan = plan_sources([f"{p}=synthetic?seed=2&rate=50" for p in PLACEMENTS], "synthetic")
    config = RuntimeConfig(backend="eager", duration_s=1.2)
    with pytest.raises(OSError, match="close failed"):
        Composer(_loaded(art), config).live(plan)
    assert set(made) == {*PLACEMENTS, "camera"}
    assert made["left_arm"].stopped
    assert not any(d.running for d in made.values())


def test_a_driver_that_cannot_connect_fails_before_anything_runs(assets, tmp_path):
    art, _ = assets
    plan = plan_sources(["left_arm=synthetic?seed=2", "right_arm=/dev/evimae-no-such-port"], None)
    before = threading.active_count()
    with pytest.raises(DeviceError, match="evimae-no-such-port"):
        Composer(_loaded(art), RuntimeConfig(backend="eager")).live(plan, record=tmp_path / "r")
    assert threading.active_count() == before  # no driver, scheduler or inference thread left
