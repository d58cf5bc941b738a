"""Property tests: whatever finite values a driver writes come back bit-exact."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evimae_stream.sessions import ImuSpec, SessionWriter, open_session

f32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
rows = st.lists(
    st.tuples(
        st.integers(1, 10**9),  # gap to the previous sample, ns
        st.tuples(f32, f32, f32, f32, f32, f32),
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    ),
    min_size=1,
    max_size=40,
)
label_text = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and s.isprintable())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows, use_dev=st.booleans(), block=st.booleans(), labels=st.lists(label_text, max_size=4)
)
def test_any_finite_samples_and_labels_round_trip(rows, use_dev, block, labels):
    t0 = 10**15
    gaps = [r[0] for r in rows]
    t = t0 + np.cumsum(gaps)
    # the reader checks the timestamps against the declared rate: declare the one they show
    rate = 1e9 / float(np.median(gaps[1:])) if len(gaps) > 1 else 25.0
    v = np.array([r[1] for r in rows], dtype=np.float32)
    dev = np.array([r[2] if r[2] is not None else 0.0 for r in rows]) if use_dev else None
    with tempfile.TemporaryDirectory() as d:
        gyro = ("ax", "ay", "az", "gx", "gy", "gz")
        with SessionWriter(Path(d) / "s", imu={"left_leg": ImuSpec(rate, gyro)}, t0_ns=t0) as w:
            if block:
                w.add_imu_block("left_leg", t, v, dev)
            else:
                for i in range(len(t)):
                    w.add_imu("left_leg", int(t[i]), v[i], None if dev is None else dev[i])
            for k, text in enumerate(labels):
                w.add_label(k * 0.5, k * 0.5 + 0.25, text)
        with open_session(Path(d) / "s") as s:
            got = s.imu["left_leg"]
            np.testing.assert_array_equal(got.values, v)
            np.testing.assert_array_equal(got.t, (t - t0) / 1e9)
            if dev is None:
                assert got.t_dev is None
            else:
                np.testing.assert_array_equal(got.t_dev, dev)
            assert [x.label for x in s.labels] == labels


def test_device_time_in_every_row_or_none(tmp_path):
    w = SessionWriter(tmp_path / "s", imu={"left_arm": ImuSpec(50.0)})
    w.add_imu("left_arm", 1, [0, 0, 1], t_dev=0.5)
    with pytest.raises(ValueError, match="every sample or for none"):
        w.add_imu("left_arm", 2, [0, 0, 1])
    with pytest.raises(ValueError, match="printable"):
        w.add_label(0.0, 1.0, "two\nlines")
    w.close()
