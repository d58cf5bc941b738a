"""An independent, direct numpy float64 statement of the EVI-MAE IMU preprocessing (DESIGN §6).

Written from the formulas, not from ``evimae_stream.preprocess``: resampling is an explicit sum
over input samples of the Hann-windowed sinc evaluated at continuous time offsets (in seconds),
and the spectrogram is an explicit DFT of each reflect-padded, windowed frame. Slow and plain on
purpose; only the tests use it.
"""

from __future__ import annotations

import numpy as np

LOWPASS_WIDTH = 6  # zero crossings of the sinc on each side
ROLLOFF = 0.99


def resample_direct(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited interpolation along axis 0, torchaudio ``Resample`` conventions.

    y[j] = Σ_n x[n] · h(n/rate_in − j/rate_out), with cutoff (as a "sample rate")
    fc = 0.99·min(rate_in, rate_out) and
    h(τ) = (fc/rate_in) · sinc(fc·τ) · cos²(π·fc·τ / (2·6)) for |fc·τ| ≤ 6, else 0.
    Samples outside the window count as zero. Output length ceil(rate_out·L/rate_in).
    Equal rates: the signal is returned unchanged (torchaudio skips the filter).
    """
    x = np.asarray(signal, dtype=np.float64)
    if rate_in == rate_out:
        return x.copy()
    n_in = x.shape[0]
    n_out = -(-rate_out * n_in // rate_in)
    fc = ROLLOFF * min(rate_in, rate_out)
    # tau[j, n]: seconds from output instant j to input sample n.
    tau = np.arange(n_in)[None, :] / rate_in - np.arange(n_out)[:, None] / rate_out
    u = fc * tau
    h = (fc / rate_in) * np.sinc(u) * np.cos(np.pi * u / (2 * LOWPASS_WIDTH)) ** 2
    h[np.abs(u) > LOWPASS_WIDTH] = 0.0
    return h @ x  # (n_out, ...) = Σ_n h[j, n] · x[n, ...]


def power_spectrogram_direct(signal: np.ndarray, n_fft: int = 256, win: int = 24) -> np.ndarray:
    """|DFT|² of every hop-1 frame of the reflect-padded signal along axis 0.

    Input (T, C) → (T+1, n_fft//2+1, C). The periodic Hann window w[m] = 0.5 − 0.5·cos(2πm/win),
    m = 0..win−1, sits centred in the n_fft frame, i.e. at frame offsets (n_fft−win)//2 + m;
    frame f covers padded samples f..f+n_fft−1 and the padding mirrors without repeating the
    edge sample.
    """
    x = np.asarray(signal, dtype=np.float64)
    half = n_fft // 2
    padded = np.concatenate([x[1 : half + 1][::-1], x, x[-half - 1 : -1][::-1]])
    m = np.arange(win)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * m / win)
    offset = (n_fft - win) // 2
    k = np.arange(half + 1)
    # Only the win non-zero taps contribute:
    # X_f[k] = Σ_m w[m] · x[f + offset + m] · exp(−2πi·k·(offset + m) / n_fft)
    basis = np.exp(-2j * np.pi * np.outer(offset + m, k) / n_fft)  # (win, bins)
    n_frames = x.shape[0] + 1
    rows = offset + np.arange(n_frames)[:, None] + m[None, :]  # (frames, win) padded indices
    frames = padded[rows] * w[:, None]  # (frames, win, C)
    spectrum = np.einsum("fmc,mk->fkc", frames, basis)  # (frames, bins, C)
    return spectrum.real**2 + spectrum.imag**2


def spectrogram_direct(window: np.ndarray, rate: int = 100, rows: int = 320) -> np.ndarray:
    """(L, C) window → (C, rows, 128) dB, float64, before dataset normalisation."""
    x = np.asarray(window, dtype=np.float32).astype(np.float64)
    n_in = x.shape[0]
    rate_out = rate * rows // n_in
    x = x - x.mean(axis=0)
    resampled = resample_direct(x, rate, rate_out)  # (T, C)
    p = power_spectrogram_direct(resampled)  # (T+1, 129, C)
    db = 10.0 * np.log10(np.maximum(p, 1e-10))[:, :128]  # (T+1, 128, C)
    out = np.zeros((rows, 128, x.shape[1]), dtype=np.float64)
    keep = min(rows, db.shape[0])
    out[:keep] = db[:keep]
    return out.transpose(2, 0, 1)
