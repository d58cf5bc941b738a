"""The DFT-matmul spectrogram (preprocess._log_power) against the direct float64 DFT reference for
window/FFT sizes other than the published 24/256 (odd taps, short FFTs), so the tap offset and the
short reflect padding hold in general, not only for the default configuration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evimae_stream.preprocess import _log_power
from tests.helpers.reference_preprocess import power_spectrogram_direct


@pytest.mark.parametrize(
    ("n_fft", "win", "length"),
    [
        (256, 24, 320),
        (64, 24, 80),
        (64, 25, 70),
        (32, 31, 40),
        (128, 7, 129),
        (16, 16, 9),
        (8, 2, 12),
        (8, 3, 12),
    ],
)
def test_dft_spectrogram_matches_direct_reference(n_fft: int, win: int, length: int) -> None:
    rng = np.random.default_rng(n_fft * 1000 + win)
    sig = rng.normal(size=(3, length))
    bins = n_fft // 2
    ours = _log_power(torch.from_numpy(sig), n_fft, win, rows=length + 1, bins=bins)
    assert ours.shape == (3, length + 1, bins)
    ref = power_spectrogram_direct(sig.T, n_fft=n_fft, win=win)  # (T+1, n_fft//2+1, C)
    ref_db = 10.0 * np.log10(np.maximum(ref, 1e-10))[:, :bins].transpose(2, 0, 1)
    assert float(np.max(np.abs(ours.numpy().astype(np.float64) - ref_db))) <= 1e-4


def test_dft_spectrogram_cuts_rows() -> None:
    sig = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 400)))
    full = _log_power(sig, 256, 24, rows=401, bins=128)
    cut = _log_power(sig, 256, 24, rows=320, bins=128)
    assert cut.shape == (2, 320, 128)
    torch.testing.assert_close(cut, full[:, :320], rtol=0, atol=0)
