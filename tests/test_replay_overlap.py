"""``--speed max`` reads window k+1 in a second thread while window k runs its forward: the
predictions must be exactly those of one window after the other, and a failure in the reader
must reach the caller."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.helpers.runtime import make_artifact, make_session, replay_at_max_speed


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("overlap")
    return make_artifact(base / "model"), make_session(base / "sess", seconds=8.0, seed=9)


def _replay(art, sess, overlap: bool, source_wrapper=None):
    threads_before = threading.active_count()
    outputs, _ = replay_at_max_speed(
        art, sess, stride_s=0.25, overlap=overlap, wrap_source=source_wrapper
    )
    assert threading.active_count() == threads_before  # the reader thread is gone
    return outputs.predictions


def test_overlapped_replay_gives_exactly_the_sequential_predictions(run_inputs):
    sequential = _replay(*run_inputs, overlap=False)
    overlapped = _replay(*run_inputs, overlap=True)
    assert [p.index for p in overlapped] == list(range(1, 33))  # 8 s at 0.25 s, in order
    assert sum(p.label is not None for p in overlapped) >= 20
    assert {p.mode for p in overlapped} >= {"multimodal"}
    for a, b in zip(sequential, overlapped, strict=True):
        assert (a.index, a.t_ref_ns, a.mode, a.label) == (b.index, b.t_ref_ns, b.mode, b.label)
        if a.probs is not None:
            np.testing.assert_array_equal(a.probs, b.probs)


def test_a_reader_failure_reaches_the_caller_and_stops_the_reader(run_inputs):
    class Failing:
        """The real replay source until 3 s of session time, then a read error."""

        def __init__(self, source):
            self.source = source

        def advance_to(self, t_s: float) -> None:
            if t_s > 3.0:
                raise OSError("video segment 7: truncated")
            self.source.advance_to(t_s)

    with pytest.raises(OSError, match="truncated"):
        _replay(*run_inputs, overlap=True, source_wrapper=Failing)
