"""IMU preprocessing against an independent float64 reference (tests/reference_preprocess.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evimae_stream.errors import InputError
from evimae_stream.preprocess import (
    NORM_STATS,
    imu_to_spectrogram,
    imu_window_to_model_input,
    resample_sinc,
)
from tests.helpers.reference_preprocess import resample_direct, spectrogram_direct

TOL_DB = 1e-4


def _max_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert ours.dtype == torch.float32
    return float(np.max(np.abs(ours.numpy().astype(np.float64) - ref)))


def _read_wear(path: Path) -> np.ndarray:
    """acc_x, acc_y, acc_z columns of a WEAR excerpt (no header), as float64 (N, 3)."""
    with path.open(newline="") as fh:
        rows = [(float(r[2]), float(r[3]), float(r[4])) for r in csv.reader(fh) if r]
    return np.asarray(rows, dtype=np.float64)


# ---------------------------------------------------------------- agreement with the reference


@pytest.mark.parametrize("length", [250, 150, 320, 200, 400, 500])
def test_random_window_matches_reference(length: int) -> None:
    rng = np.random.default_rng(length)
    x = rng.normal(scale=0.7, size=(length, 12)) + rng.normal(size=12)
    ours = imu_to_spectrogram(x)
    assert ours.shape == (12, 320, 128)
    assert _max_diff(ours, spectrogram_direct(x)) <= TOL_DB


@pytest.mark.parametrize("length", [250, 150])
def test_batched_matches_reference_and_per_item(length: int) -> None:
    rng = np.random.default_rng(7 + length)
    x = rng.normal(size=(2, length, 12)).astype(np.float32)
    batched = imu_to_spectrogram(x)
    assert batched.shape == (2, 12, 320, 128)
    for b in range(2):
        single = imu_to_spectrogram(x[b])
        torch.testing.assert_close(batched[b], single, rtol=0, atol=1e-6)
        assert _max_diff(batched[b], spectrogram_direct(x[b])) <= TOL_DB


def test_large_values_match_reference() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-8.0, 8.0, size=(250, 12))
    x[::17] = 8.0
    x[5::23] = -8.0
    assert _max_diff(imu_to_spectrogram(x), spectrogram_direct(x)) <= TOL_DB


@pytest.mark.parametrize("length", [250, 700])
def test_constant_signal_is_power_floor_then_zero_padding(length: int) -> None:
    x = np.tile(np.array([0.3, -1.0, 0.98] * 4, dtype=np.float32), (length, 1))
    ours = imu_to_spectrogram(x)
    ref = spectrogram_direct(x)
    assert _max_diff(ours, ref) <= TOL_DB
    # Resampled length ceil(new·L/100) with new = floor(32000/L), plus one centred frame.
    new = 32000 // length
    frames = min(320, math.ceil(new * length / 100) + 1)
    assert torch.all(ours[:, :frames] == -100.0)  # zero signal → 10·log10(1e-10)
    assert torch.all(ours[:, frames:] == 0.0)  # rows past the spectrogram are zero-padded
    if length == 700:
        assert frames < 320


def test_real_wear_windows_match_reference(wear_dir: Path) -> None:
    windows = []
    for name, starts in (
        ("right_wrist_0_10.csv", (0, 4_000, 12_345, 29_750)),
        ("right_wrist_10_20.csv", (1_000, 20_500)),
    ):
        acc = _read_wear(wear_dir / name)
        for s in starts:
            one = acc[s : s + 250]
            assert one.shape == (250, 3)
            windows.append(np.tile(one, (1, 4)))  # the one sensor on all four slots
    batch = np.stack(windows)
    ours = imu_to_spectrogram(batch)
    for b, window in enumerate(windows):
        ref = spectrogram_direct(window)
        assert _max_diff(ours[b], ref) <= TOL_DB
        # The four slots carry the same sensor, so their spectrograms are identical.
        for slot in range(1, 4):
            assert torch.equal(ours[b, 3 * slot : 3 * slot + 3], ours[b, 0:3])


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(length=st.integers(min_value=100, max_value=600), seed=st.integers(0, 2**32 - 1))
def test_property_any_length_matches_reference(length: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=rng.uniform(0.01, 4.0), size=(length, 12))
    ours = imu_to_spectrogram(x)
    assert ours.shape == (12, 320, 128)
    assert _max_diff(ours, spectrogram_direct(x)) <= TOL_DB


# ---------------------------------------------------------------- resampling on its own


@pytest.mark.parametrize(("rate_in", "rate_out"), [(100, 128), (100, 213), (100, 53), (100, 80)])
def test_resample_matches_direct_sum(rate_in: int, rate_out: int) -> None:
    rng = np.random.default_rng(rate_out)
    x = rng.normal(size=(2, 3, 250))
    ours = resample_sinc(torch.from_numpy(x), rate_in, rate_out)
    expected_len = math.ceil(rate_out * 250 / rate_in)
    assert ours.shape == (2, 3, expected_len)
    for i in range(2):
        for c in range(3):
            ref = resample_direct(x[i, c], rate_in, rate_out)
            np.testing.assert_allclose(ours[i, c].numpy(), ref, rtol=0, atol=1e-12)


def test_resample_equal_rates_is_identity() -> None:
    x = torch.randn(4, 320, dtype=torch.float64)
    assert torch.equal(resample_sinc(x, 100, 100), x)


def test_resample_reconstructs_band_limited_sine() -> None:
    # A 3 Hz sine at 100 Hz, upsampled to 128 Hz, is the same sine at the new instants
    # (away from the zero-padded ends, where the sinc interpolation lacks neighbours).
    n = np.arange(250)
    x = np.sin(2 * np.pi * 3.0 * n / 100.0)
    y = resample_sinc(torch.from_numpy(x), 100, 128).numpy()
    j = np.arange(y.shape[0])
    truth = np.sin(2 * np.pi * 3.0 * j / 128.0)
    interior = slice(20, y.shape[0] - 20)
    np.testing.assert_allclose(y[interior], truth[interior], atol=2e-3)


# ---------------------------------------------------------------- invariances and contracts


def test_dc_offset_does_not_change_output() -> None:
    rng = np.random.default_rng(11)
    # Dyadic values and offsets are exact in float32, so only the mean removal is tested.
    x = rng.integers(-2048, 2048, size=(250, 12)).astype(np.float64) / 1024.0
    offsets = rng.integers(-8, 9, size=12).astype(np.float64) / 2.0
    a = imu_to_spectrogram(x)
    b = imu_to_spectrogram(x + offsets)
    assert float((a - b).abs().max()) <= TOL_DB


def test_numpy_and_torch_inputs_agree_and_input_is_read_as_float32() -> None:
    rng = np.random.default_rng(5)
    x64 = rng.normal(size=(150, 12))
    from_np = imu_to_spectrogram(x64)
    from_torch = imu_to_spectrogram(torch.from_numpy(x64))
    from_f32 = imu_to_spectrogram(x64.astype(np.float32))
    assert torch.equal(from_np, from_torch)
    assert torch.equal(from_np, from_f32)


def test_integer_input_is_accepted() -> None:
    x = np.random.default_rng(2).integers(-100, 100, size=(200, 12))
    assert _max_diff(imu_to_spectrogram(x), spectrogram_direct(x)) <= TOL_DB


def test_model_input_normalisation_matches_reference() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(250, 12))
    mean, std = NORM_STATS["wear"].mean, NORM_STATS["wear"].std
    ours = imu_window_to_model_input(x, mean, std)
    ref = (spectrogram_direct(x) - mean) / std
    assert ours.shape == (12, 320, 128) and ours.dtype == torch.float32
    assert _max_diff(ours, ref) <= TOL_DB / std
    batched = imu_window_to_model_input(x[None], mean, std)
    assert batched.shape == (1, 12, 320, 128)
    torch.testing.assert_close(batched[0], ours, rtol=0, atol=1e-6)


def test_published_normalisation_constants() -> None:
    assert (NORM_STATS["wear"].mean, NORM_STATS["wear"].std) == (-51.17, 26.19)
    assert (NORM_STATS["cmummac"].mean, NORM_STATS["cmummac"].std) == (-70.84, 23.44)


def test_model_input_rejects_bad_std() -> None:
    with pytest.raises(ValueError, match="std"):
        imu_window_to_model_input(np.zeros((250, 12)), -51.17, 0.0)


@pytest.mark.parametrize(
    "shape", [(250, 11), (250,), (2, 3, 250, 12), (0, 12), (12, 250), (2, 250, 3)]
)
def test_bad_shape_raises_input_error_naming_expected_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"\(L, 12\) or \(B, L, 12\)") as info:
        imu_to_spectrogram(np.zeros(shape, dtype=np.float32))
    assert str(tuple(shape)) in str(info.value)
    assert "\n" not in str(info.value)


def test_non_finite_values_raise() -> None:
    x = np.zeros((250, 12))
    x[100, 4] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        imu_to_spectrogram(x)
    x[100, 4] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        imu_to_spectrogram(torch.from_numpy(x))


@pytest.mark.parametrize(
    "bad",
    [
        [[0.0] * 12] * 250,
        np.zeros((250, 12), dtype=np.complex64),
        np.full((250, 12), "1.0"),
        torch.zeros(250, 12, dtype=torch.bool),
    ],
)
def test_bad_type_raises_input_error(bad: object) -> None:
    with pytest.raises(InputError, match="IMU window"):
        imu_to_spectrogram(bad)  # type: ignore[arg-type]


def test_non_integer_source_rate_raises() -> None:
    with pytest.raises(InputError, match="src_rate"):
        imu_to_spectrogram(np.zeros((250, 12)), src_rate=99.5)


def test_window_too_long_for_the_spectrogram_raises() -> None:
    with pytest.raises(InputError, match="too long"):
        imu_to_spectrogram(np.zeros((32_001, 12), dtype=np.float32))


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 250, 12)))
    on_gpu = imu_to_spectrogram(x.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), imu_to_spectrogram(x), rtol=0, atol=TOL_DB)
