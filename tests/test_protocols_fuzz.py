"""Hypothesis fuzz of every parser: no exception on any bytes and any split; valid frames
embedded in garbage are recovered."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.protocols import (
    CsvParser,
    NusParser,
    TextFormat,
    WitmotionBleParser,
    WitmotionSerialParser,
)
from drivers.protocols.text_lines import LAYOUT_RUN, encode_csv, encode_nus
from drivers.protocols.witmotion import ACC_SCALE, encode_ble_packet, encode_serial_sample

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS = {
    "csv": lambda: CsvParser(),
    "csv_cols": lambda: CsvParser(TextFormat(cols=("ax", "ay", "az", "t"))),
    "nus": lambda: NusParser(),
    "witmotion_serial": WitmotionSerialParser,
    "witmotion_ble": WitmotionBleParser,
}

acc_strategy = st.lists(
    st.tuples(*[st.floats(-7.9, 7.9, allow_nan=False) for _ in range(3)]), min_size=1, max_size=8
)
#: enough lines for a text protocol to learn its layout from (the binary ones need one frame)
run_strategy = st.lists(
    st.tuples(*[st.floats(-7.9, 7.9, allow_nan=False) for _ in range(3)]),
    min_size=LAYOUT_RUN,
    max_size=8,
)
#: numbers as a sensor's text line may spell them, weighted to the edges: float32 overflow
#: (finite in float64: ``1e39``), its border, non-finite words, huge exponents, plain values
number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-1e40, 1e40).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e39", "-1e39", "3.4028235e38", "3.5e38", "1e308"]),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-9, 9), st.integers(30, 400)),
    st.integers(-(10**40), 10**40).map(str),
    st.floats(-10, 10).map(lambda x: f"{x:.4f}"),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def feed_all(parser, chunks) -> list:
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


@FUZZ
@given(
    name=st.sampled_from(sorted(PARSERS)),
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=12),
)
def test_any_bytes_any_split_never_raise_and_counters_add_up(name, data, cuts):
    parser = PARSERS[name]()
    out = feed_all(parser, split(data, cuts))
    assert parser.counters.bytes == len(data)
    assert parser.counters.samples == len(out)
    for sample in out:
        assert sample.values.dtype == np.float32
        assert sample.values.shape in ((3,), (6,))
        assert np.isfinite(sample.values).all()


def encoded(name: str, acc: np.ndarray) -> bytes:
    n = len(acc)
    if name == "witmotion_serial":
        return b"".join(encode_serial_sample(a) for a in acc)
    if name == "witmotion_ble":
        return b"".join(encode_ble_packet(a) for a in acc)
    if name == "nus":
        return encode_nus(acc, 1000 + 20 * np.arange(n))
    return encode_csv(acc, t_dev=1.0 + 0.01 * np.arange(n))


@FUZZ
@given(
    name=st.sampled_from(["csv", "csv_cols", "nus", "witmotion_serial", "witmotion_ble"]),
    acc=run_strategy,
    before=st.binary(max_size=300),
    after=st.binary(max_size=60),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_valid_frames_after_garbage_are_recovered(name, acc, before, after, cuts):
    acc = np.array(acc)
    binary = name.startswith("witmotion")
    if binary:
        # garbage without a header byte: it cannot fake a frame that swallows a real one
        before, after = before.replace(b"\x55", b""), after.replace(b"\x55", b"")
    else:
        # garbage ends at a line break (the sender's next line starts clean)
        before = before.replace(b"\n", b"") + b"\n"
    data = before + encoded(name, acc) + after
    parser = PARSERS[name]()
    out = feed_all(parser, split(data, cuts))
    got = np.array([s.values[:3] for s in out])
    assert got.shape == acc.shape, (got, acc)
    np.testing.assert_allclose(
        got, acc, atol=max(ACC_SCALE, 5e-4) if binary or name == "nus" else 1e-4
    )


@FUZZ
@given(
    acc=acc_strategy,
    noise=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 2000), max_size=10),
)
def test_witmotion_serial_resyncs_between_frames_despite_any_noise(acc, noise, cuts):
    """Noise (even with 0x55 bytes) between cycles costs at most the next cycle's frames."""
    acc = np.array(acc)
    cycles = [encode_serial_sample(a) for a in acc]
    data = b""
    for i, cycle in enumerate(cycles):
        data += noise[i % len(noise)] + cycle
    # three clean cycles at the end: they must always come through
    tail = np.array([[0.5, -0.5, 1.0]] * 3)
    data += b"".join(encode_serial_sample(a) for a in tail)
    parser = WitmotionSerialParser()
    out = feed_all(parser, split(data, cuts))
    got = np.array([s.values[:3] for s in out])
    np.testing.assert_allclose(got[-2:], tail[-2:], atol=ACC_SCALE)


@FUZZ
@given(
    name=st.sampled_from(["csv", "csv_cols", "nus", "csv_scaled", "nus_json"]),
    rows=st.lists(st.lists(number_text, min_size=3, max_size=7), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
)
def test_text_numbers_never_give_a_non_finite_sample(name, rows, cuts):
    """Item 16.20: whatever numbers a text line spells (float32 overflow, huge exponents, nan,
    inf), every sample is finite float32 and every line is either a sample or a counted reject."""
    if name == "nus_json":
        lines = [
            "{" + ",".join(f'"{k}":{v}' for k, v in zip("xyzt", row, strict=False)) + "}"
            for row in rows
        ]
        parser = NusParser()
    else:
        lines = [",".join(row) for row in rows]
        parser = CsvParser(TextFormat(scale=1000.0)) if name == "csv_scaled" else PARSERS[name]()
    data = "\n".join(lines).encode("ascii") + b"\n"
    out = feed_all(parser, split(data, cuts))
    for sample in out:
        assert sample.values.dtype == np.float32 and np.isfinite(sample.values).all()
        assert sample.t_dev is None or np.isfinite(sample.t_dev)
    assert parser.counters.samples + parser.counters.bad_parse <= len(lines)
